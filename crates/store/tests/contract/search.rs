//! Finding users by any part of a name and reading them in another order: `contains` matches
//! the typed text literally and case-insensitively (a `%`, `_` or `\` in it is itself, never a
//! wildcard), alone on a column or over the three names at once; and every page of a list
//! ordered by display name or user principal name, either way, holds the next rows in that
//! order, with ties broken by id, no row twice and none left out.

use std::collections::HashSet;

use portcullis_core::directory::model::User;
use portcullis_core::kernel::odata::USER_ANY_NAME;
use portcullis_core::store::prelude::*;
use portcullis_core::store::{Change, Cursor, ListQuery, Op, Order, Predicate};
use portcullis_store::SqlStore;
use uuid::Uuid;

use crate::fixtures::{T0, commit, pred, query, text, user};

contract!(
    contains_matches_any_part_literally_and_ignores_case,
    contains_over_the_names_searches_each_of_them,
    ordered_lists_page_in_order_both_ways,
    a_cursor_made_under_another_order_is_refused,
);

fn person(display_name: &str, upn: &str, mail: Option<&str>, n: i64) -> User {
    let mut u = user(upn, T0 + n);
    u.display_name = display_name.to_string();
    u.mail = mail.map(str::to_string);
    u
}

async fn found(store: &SqlStore, filter: Vec<Predicate>) -> Vec<String> {
    let mut names: Vec<String> = store
        .list_users(&query(filter))
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|u| u.display_name)
        .collect();
    names.sort();
    names
}

async fn contains_matches_any_part_literally_and_ignores_case(store: SqlStore) {
    let people = [
        "Joni Mitchell",
        "Sale 50% off",
        "Sale 500 off",
        "a_b",
        "axb",
        "back\\slash",
        "backslash",
        "MARY-ann O'Neil",
    ];
    commit(
        &store,
        people
            .iter()
            .enumerate()
            .map(|(n, name)| {
                Change::InsertUser(person(name, &format!("p{n}@contoso.com"), None, n as i64))
            })
            .collect(),
    )
    .await;
    let by_name = |part: &str| vec![pred("display_name", Op::Contains, text(part))];

    // A middle part, in any case of its letters.
    assert_eq!(
        found(&store, by_name("NI MIT")).await,
        vec!["Joni Mitchell"]
    );
    assert_eq!(
        found(&store, by_name("ann o'n")).await,
        vec!["MARY-ann O'Neil"]
    );
    // The wildcards of LIKE are themselves.
    assert_eq!(found(&store, by_name("50%")).await, vec!["Sale 50% off"]);
    assert_eq!(found(&store, by_name("a_b")).await, vec!["a_b"]);
    assert_eq!(found(&store, by_name("k\\s")).await, vec!["back\\slash"]);
    assert_eq!(found(&store, by_name("%")).await, vec!["Sale 50% off"]);
    assert_eq!(found(&store, by_name("_")).await, vec!["a_b"]);
    // Nothing matches text no name holds.
    assert!(found(&store, by_name("zz")).await.is_empty());
    // It combines with the other predicates, and the count agrees with the rows.
    let mut both = by_name("sale");
    both.push(pred("display_name", Op::StartsWith, text("sale 500")));
    assert_eq!(found(&store, both).await, vec!["Sale 500 off"]);
    let counted = store
        .list_users(&ListQuery {
            count: true,
            ..query(by_name("SALE"))
        })
        .await
        .unwrap();
    assert_eq!(counted.count, Some(2));
    // Not on a column that does not hold text.
    let refused = store
        .list_users(&query(vec![pred(
            "account_enabled",
            Op::Contains,
            text("1"),
        )]))
        .await
        .unwrap_err();
    assert_eq!(refused.target(), Some("$filter"));
}

async fn contains_over_the_names_searches_each_of_them(store: SqlStore) {
    commit(
        &store,
        vec![
            Change::InsertUser(person("Ada Lovelace", "ada@contoso.com", None, 1)),
            Change::InsertUser(person(
                "Grace",
                "ghopper@contoso.com",
                Some("amazing.grace@navy.example"),
                2,
            )),
            Change::InsertUser(person("Linus", "lovelace.fan@contoso.com", None, 3)),
            Change::InsertUser(person("Nobody", "nobody@contoso.com", None, 4)),
        ],
    )
    .await;
    let any = |part: &str| vec![pred(USER_ANY_NAME, Op::Contains, text(part))];
    // The display name of one, the user principal name of another.
    assert_eq!(
        found(&store, any("LOVELACE")).await,
        vec!["Ada Lovelace", "Linus"]
    );
    // The mail, where a person has one; no mail is no match, not an error.
    assert_eq!(found(&store, any("navy")).await, vec!["Grace"]);
    assert_eq!(found(&store, any("contoso")).await.len(), 4);
    // The group is searched for parts, nothing else.
    let refused = store
        .list_users(&query(vec![pred(USER_ANY_NAME, Op::Eq, text("Ada"))]))
        .await
        .unwrap_err();
    assert_eq!(refused.target(), Some("$search"));
}

/// Every page of the users in `order`, `top` at a time.
async fn every_page(store: &SqlStore, order: Order, top: usize) -> Vec<User> {
    let mut seen = Vec::new();
    let mut after: Option<Cursor> = None;
    for _ in 0..50 {
        let page = store
            .list_users_in_order(
                &ListQuery {
                    top,
                    after: after.take(),
                    ..ListQuery::default()
                },
                Some(order),
            )
            .await
            .unwrap();
        assert!(page.items.len() <= top);
        seen.extend(page.items);
        match page.next {
            Some(next) => after = Some(next),
            None => return seen,
        }
    }
    panic!("paging never ended");
}

async fn ordered_lists_page_in_order_both_ways(store: SqlStore) {
    // Names in mixed case, ties (two "Sam"s, told apart by id), and creation times that run
    // against the names' order.
    let names = [
        "sam", "Sam", "bea", "Ann", "carl", "Dora", "eve", "ann", "Zed", "mo",
    ];
    let people: Vec<User> = names
        .iter()
        .enumerate()
        .map(|(n, name)| {
            person(
                name,
                &format!("{}{n}@contoso.com", (b'z' - n as u8) as char),
                None,
                100 - n as i64,
            )
        })
        .collect();
    commit(
        &store,
        people.iter().cloned().map(Change::InsertUser).collect(),
    )
    .await;

    let key = |u: &User, by: &str| match by {
        "display_name" => u.display_name.to_lowercase(),
        _ => u.user_principal_name.to_lowercase(),
    };
    for by in ["display_name", "user_principal_name"] {
        for descending in [false, true] {
            let mut expected = people.clone();
            expected.sort_by(|a, b| {
                (key(a, by), a.id.to_string()).cmp(&(key(b, by), b.id.to_string()))
            });
            if descending {
                expected.reverse();
            }
            for top in [1, 3, 4, 10] {
                let seen = every_page(&store, Order { by, descending }, top).await;
                let ids: Vec<Uuid> = seen.iter().map(|u| u.id).collect();
                let want: Vec<Uuid> = expected.iter().map(|u| u.id).collect();
                assert_eq!(ids, want, "{by} descending={descending} top={top}");
                assert_eq!(ids.iter().collect::<HashSet<_>>().len(), people.len());
            }
        }
    }
    // By creation time, either way.
    let mut by_time = people.clone();
    by_time.sort_by_key(|u| (u.created_date_time, u.id.to_string()));
    let newest_first: Vec<Uuid> = by_time.iter().rev().map(|u| u.id).collect();
    let seen = every_page(
        &store,
        Order {
            by: "created",
            descending: true,
        },
        3,
    )
    .await;
    assert_eq!(seen.iter().map(|u| u.id).collect::<Vec<_>>(), newest_first);

    // A search narrows an ordered list and its count alike.
    let page = store
        .list_users_in_order(
            &ListQuery {
                filter: vec![pred("display_name", Op::Contains, text("A"))],
                count: true,
                top: 2,
                ..ListQuery::default()
            },
            Some(Order {
                by: "display_name",
                descending: false,
            }),
        )
        .await
        .unwrap();
    let shown: Vec<String> = page.items.iter().map(|u| u.display_name.clone()).collect();
    assert_eq!(
        page.count,
        Some(7),
        "sam, Sam, bea, Ann, carl, Dora, ann: those with an a"
    );
    assert_eq!(shown.len(), 2);
    assert!(
        shown.iter().all(|n| n.eq_ignore_ascii_case("ann")),
        "{shown:?}"
    );
}

async fn a_cursor_made_under_another_order_is_refused(store: SqlStore) {
    commit(
        &store,
        (0..3)
            .map(|n| Change::InsertUser(person("x", &format!("u{n}@contoso.com"), None, n)))
            .collect(),
    )
    .await;
    let by_name = Some(Order {
        by: "display_name",
        descending: false,
    });
    let first = store
        .list_users_in_order(
            &ListQuery {
                top: 1,
                ..ListQuery::default()
            },
            by_name,
        )
        .await
        .unwrap();
    let keyed = first.next.clone().expect("a next page");
    assert!(keyed.key.is_some());
    // A text key where time orders.
    let refused = store
        .list_users(&ListQuery {
            after: Some(keyed),
            ..ListQuery::default()
        })
        .await
        .unwrap_err();
    assert_eq!(refused.target(), Some("$skiptoken"));
    // A time where a text key orders.
    let timed = store
        .list_users(&ListQuery {
            top: 1,
            ..ListQuery::default()
        })
        .await
        .unwrap()
        .next
        .expect("a next page");
    let refused = store
        .list_users_in_order(
            &ListQuery {
                after: Some(timed),
                ..ListQuery::default()
            },
            by_name,
        )
        .await
        .unwrap_err();
    assert_eq!(refused.target(), Some("$skiptoken"));
    // A column the list cannot be ordered by.
    let refused = store
        .list_users_in_order(
            &ListQuery::default(),
            Some(Order {
                by: "mail",
                descending: false,
            }),
        )
        .await
        .unwrap_err();
    assert_eq!(refused.target(), Some("$orderby"));
}
