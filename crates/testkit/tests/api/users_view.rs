//! The Users view (issue 21): Graph's `$search` and `$orderby` on `/users`, the portal's list
//! searched by any part of a name, sorted and counted, and its "Edit profile" form — the same
//! core call as `PATCH /users/{id}`, so the same permission, audit entry and privileged-target
//! rule, refused for every role that may not change users.

use portcullis_testkit::fixtures::{
    self, admin_session, assign_role, create_user, person_with_roles,
};
use portcullis_testkit::{Reply, StatusCode, TestServer};
use serde_json::Value;

const GLOBAL_ADMINISTRATOR: &str = "62e90394-69f5-4237-9190-012177145e10";
const USER_ADMINISTRATOR: &str = "fe930be7-5e62-47db-91af-98c3a49a38b1";

/// Roles whose holders may read users but not change them: the edit form is not theirs.
const READ_ONLY_ROLES: &[(&str, &str)] = &[
    ("Global Reader", "f2ef992c-3afb-46b9-b7cf-a126ee74c451"),
    ("Security Reader", "5d6b6bb7-de71-4623-b4af-96380a352509"),
    ("Reports Reader", "4a5d8f65-41da-4de4-8968-e035b65339cf"),
    (
        "Helpdesk Administrator",
        "729827e3-9c14-49f7-bb1b-9608f156bbb8",
    ),
    (
        "Authentication Administrator",
        "c4e39bd9-1100-46d3-8c65-fb160da0071f",
    ),
    (
        "Groups Administrator",
        "fdd7a751-b60b-444a-984c-02652fe8fa1c",
    ),
];

/// A page request from the portal's own origin with a person's session, redirects left alone;
/// the body is the page's text.
async fn portal(t: &TestServer, session: &str, path: &str, form: Option<&[(&str, &str)]>) -> Reply {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut request = match form {
        None => http.get(format!("{}{path}", t.url)),
        Some(fields) => http
            .post(format!("{}{path}", t.url))
            .header("origin", &t.url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(serde_urlencoded::to_string(fields).unwrap()),
    };
    request = request.header("cookie", format!("{}={session}", fixtures::SESSION_COOKIE));
    let response = request.send().await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    Reply {
        status,
        headers,
        body: Value::String(text),
    }
}

fn text(reply: &Reply) -> &str {
    reply.body.as_str().unwrap_or("")
}

fn names(reply: &Reply) -> Vec<String> {
    reply.body["value"]
        .as_array()
        .unwrap_or_else(|| panic!("{:?}", reply.body))
        .iter()
        .map(|u| u["displayName"].as_str().unwrap().to_string())
        .collect()
}

/// Every page of a Graph list, following `@odata.nextLink`.
async fn all_pages(t: &TestServer, first: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut path = first.to_string();
    loop {
        let r = t.get(&path).await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {:?}", r.body);
        out.extend(names(&r));
        match r.body["@odata.nextLink"].as_str() {
            Some(next) => path = next.split("/graph/v1.0").nth(1).unwrap().to_string(),
            None => return out,
        }
    }
}

async fn audits(t: &TestServer, activity: &str, user: &str, result: &str) -> Vec<Value> {
    let r = t.get("/auditLogs/directoryAudits?$top=999").await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    r.body["value"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| {
            a["result"] == result
                && a["activityDisplayName"] == activity
                && a["targetResources"][0]["id"] == user
        })
        .cloned()
        .collect()
}

#[tokio::test]
async fn graph_searches_any_part_and_orders_users_across_pages() {
    let t = TestServer::start().await;
    for (upn, name) in [
        ("joni@search.example", "Joni Sherman"),
        ("ann.sherwood@search.example", "ann Sherwood"),
        ("pct@search.example", "Sale 50% off"),
        ("under@search.example", "a_b"),
        ("plain@search.example", "axb"),
        ("zed@search.example", "Zed"),
    ] {
        create_user(&t, upn, name).await;
    }
    // Any part of the display name, in any case; `%` and `_` are themselves.
    let r = t.get("/users?$search=\"displayName:SHER\"").await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let mut found = names(&r);
    found.sort();
    assert_eq!(found, vec!["Joni Sherman", "ann Sherwood"]);
    let r = t.get("/users?$search=\"displayName:50%25\"").await;
    assert_eq!(names(&r), vec!["Sale 50% off"]);
    let r = t.get("/users?$search=\"displayName:a_b\"").await;
    assert_eq!(names(&r), vec!["a_b"]);
    // Clauses joined by AND all hold; the user principal name is searched too.
    let r = t
        .get("/users?$search=\"userPrincipalName:sher\" AND \"displayName:ann\"")
        .await;
    assert_eq!(names(&r), vec!["ann Sherwood"]);
    // With $count, and with Graph's header (accepted, not needed).
    let token = t.admin_token().await;
    let counted = t
        .http
        .get(format!(
            "{}/graph/v1.0/users?$search=\"displayName:sher\"&$count=true",
            t.url
        ))
        .bearer_auth(&token)
        .header("ConsistencyLevel", "eventual")
        .send()
        .await
        .unwrap();
    assert_eq!(counted.status(), StatusCode::OK);
    let body: Value = counted.json().await.unwrap();
    assert_eq!(body["@odata.count"], 2);
    let r = t.get("/users/$count?$search=\"displayName:sher\"").await;
    assert_eq!(r.status, StatusCode::OK);

    // $orderby across pages of two, both ways; the next link keeps the order and the search.
    let asc = all_pages(
        &t,
        "/users?$search=\"userPrincipalName:search.example\"&$orderby=displayName&$top=2",
    )
    .await;
    assert_eq!(
        asc,
        vec![
            "a_b",
            "ann Sherwood",
            "axb",
            "Joni Sherman",
            "Sale 50% off",
            "Zed"
        ]
    );
    let desc = all_pages(
        &t,
        "/users?$search=\"userPrincipalName:search.example\"&$orderby=userPrincipalName desc&$top=4",
    )
    .await;
    assert_eq!(
        desc,
        vec![
            "Zed",
            "a_b",
            "axb",
            "Sale 50% off",
            "Joni Sherman",
            "ann Sherwood"
        ]
    );
    let by_time = all_pages(
        &t,
        "/users?$search=\"userPrincipalName:search.example\"&$orderby=createdDateTime desc&$top=5",
    )
    .await;
    assert_eq!(by_time.len(), 6);

    // A page link of one order is not a page of another.
    let first = t.get("/users?$orderby=displayName&$top=1").await;
    let next = first.body["@odata.nextLink"].as_str().unwrap();
    let token = next.split("skiptoken=").nth(1).unwrap();
    let r = t.get(&format!("/users?$skiptoken={token}")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    assert_eq!(r.error_target(), Some("$skiptoken"));

    // What is not supported is refused by name, never ignored.
    for (query, option) in [
        ("$orderby=mail", "$orderby"),
        ("$orderby=displayName,userPrincipalName", "$orderby"),
        ("$orderby=displayName sideways", "$orderby"),
        ("$search=joni", "$search"),
        ("$search=\"password:x\"", "$search"),
        ("$search=\"displayName:a\" OR \"mail:b\"", "$search"),
        ("$search=\"displayName:a\"&$search=\"mail:b\"", "$search"),
    ] {
        let r = t.get(&format!("/users?{query}")).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{query}: {:?}", r.body);
        assert_eq!(r.error_target(), Some(option), "{query}");
        assert_eq!(r.error_code(), Some("Request_UnsupportedQuery"), "{query}");
    }
    for list in ["/groups", "/applications"] {
        for (query, option) in [
            ("$search=\"displayName:a\"", "$search"),
            ("$orderby=displayName", "$orderby"),
        ] {
            let r = t.get(&format!("{list}?{query}")).await;
            assert_eq!(r.status, StatusCode::BAD_REQUEST, "{list}?{query}");
            assert_eq!(r.error_target(), Some(option), "{list}?{query}");
        }
    }
    t.check_invariants().await;
    t.stop().await;
}

#[tokio::test]
async fn the_portal_list_searches_any_part_sorts_and_counts() {
    let t = TestServer::start().await;
    for (upn, name) in [
        ("joni@contoso.com", "Joni Sherman"),
        ("ann@contoso.com", "Ann Sherwood"),
        ("pat@fabrikam.example", "Pat"),
    ] {
        create_user(&t, upn, name).await;
    }
    let admin = admin_session(&t).await;
    let r = portal(&t, &admin, "/admin/users?q=HERw", None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", text(&r));
    assert!(text(&r).contains("Ann Sherwood"));
    assert!(!text(&r).contains("Joni Sherman"));
    assert!(text(&r).contains("1 user match"), "{}", text(&r));
    // The user principal name is searched too; the count is of every match.
    let r = portal(&t, &admin, "/admin/users?q=fabrikam", None).await;
    assert!(text(&r).contains("pat@fabrikam.example"));
    let r = portal(&t, &admin, "/admin/users?q=sher&sort=name&dir=desc", None).await;
    let page = text(&r);
    assert!(page.contains("2 users match"), "{page}");
    let joni = page.find("Joni Sherman").unwrap();
    let ann = page.find("Ann Sherwood").unwrap();
    assert!(joni < ann, "Joni before Ann, descending");
    assert!(page.contains("aria-sort=\"descending\""), "{page}");
    // The sorted column's link turns the order around; the search stays.
    assert!(
        page.contains("users?q=sher&amp;sort=name&amp;dir=asc\""),
        "{page}"
    );
    // An order the list does not have is a clear 400.
    for query in ["sort=mail", "sort=name&dir=up"] {
        let r = portal(&t, &admin, &format!("/admin/users?{query}"), None).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{query}");
        assert!(text(&r).contains("error-summary"), "{query}");
    }
    t.stop().await;
}

/// The edit form is Graph's PATCH: the fields change and are audited as "Update user"; bad
/// input is a 400 with the form kept and nothing changed.
#[tokio::test]
async fn editing_a_profile_saves_audits_and_keeps_input_on_error() {
    let t = TestServer::start().await;
    let joni = create_user(&t, "joni@contoso.com", "Joni").await;
    create_user(&t, "taken@contoso.com", "Taken").await;
    let admin = admin_session(&t).await;
    let path = format!("/admin/users/{joni}/edit");

    let form = portal(&t, &admin, &path, None).await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(text(&form).contains("value=\"joni@contoso.com\""));
    assert!(text(&form).contains("Edit profile"));

    // An empty display name, a malformed mail, a taken name: each refused beside its field,
    // what was typed still there.
    for (fields, field) in [
        (
            [
                ("displayName", ""),
                ("userPrincipalName", "joni@contoso.com"),
                ("mail", ""),
                ("userType", "Member"),
            ],
            "displayName",
        ),
        (
            [
                ("displayName", "Joni S"),
                ("userPrincipalName", "joni@contoso.com"),
                ("mail", "not a mail"),
                ("userType", "Member"),
            ],
            "mail",
        ),
        (
            [
                ("displayName", "Joni S"),
                ("userPrincipalName", "taken@contoso.com"),
                ("mail", ""),
                ("userType", "Member"),
            ],
            "userPrincipalName",
        ),
        (
            [
                ("displayName", "Joni S"),
                ("userPrincipalName", "joni@contoso.com"),
                ("mail", ""),
                ("userType", "Owner"),
            ],
            "userType",
        ),
    ] {
        let r = portal(&t, &admin, &path, Some(&fields)).await;
        assert!(r.status.is_client_error(), "{field}: {}", text(&r));
        assert!(text(&r).contains("error-summary"), "{field}");
        assert!(
            text(&r).contains(&format!("id=\"{field}-error\"")),
            "{field}: {}",
            text(&r)
        );
        assert!(text(&r).contains("value=\"Joni S\"") || field == "displayName");
    }
    let user = t.get(&format!("/users/{joni}")).await.body;
    assert_eq!(user["displayName"], "Joni", "nothing changed");

    let r = portal(
        &t,
        &admin,
        &path,
        Some(&[
            ("displayName", "Joni Sherman"),
            ("userPrincipalName", "joni.sherman@contoso.com"),
            ("mail", "joni@mail.contoso.com"),
            ("userType", "Guest"),
        ]),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", text(&r));
    let location = r.headers["location"].to_str().unwrap();
    assert_eq!(location, format!("/admin/users/{joni}?done=profile-saved"));
    let user = t.get(&format!("/users/{joni}")).await.body;
    assert_eq!(user["displayName"], "Joni Sherman");
    assert_eq!(user["userPrincipalName"], "joni.sherman@contoso.com");
    assert_eq!(user["mail"], "joni@mail.contoso.com");
    assert_eq!(user["userType"], "Guest");
    let saved = audits(&t, "Update user", &joni, "success").await;
    assert_eq!(saved.len(), 1);
    let modified: Vec<&str> = saved[0]["targetResources"][0]["modifiedProperties"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["displayName"].as_str().unwrap())
        .collect();
    for property in ["displayName", "userPrincipalName", "mail", "userType"] {
        assert!(modified.contains(&property), "{property}: {modified:?}");
    }
    let page = portal(&t, &admin, location, None).await;
    assert!(text(&page).contains("The profile was saved."));
    assert!(text(&page).contains("id=\"edit-profile\""));
    t.check_invariants().await;
    t.stop().await;
}

/// Every role that may not change users is refused the form and its post, and nothing
/// changes; a User Administrator may not change a Global Administrator's sign-in name or mail
/// (refused, audited, the form kept), but may edit someone without a role.
#[tokio::test]
async fn editing_a_profile_is_refused_to_who_may_not_and_to_a_user_administrator_on_a_global_administrator()
 {
    let t = TestServer::start().await;
    let target = create_user(&t, "grace@contoso.com", "Grace").await;
    assign_role(&t, &target, GLOBAL_ADMINISTRATOR).await;
    let plain = create_user(&t, "pat@contoso.com", "Pat").await;
    let change = [
        ("displayName", "Renamed"),
        ("userPrincipalName", "renamed@contoso.com"),
        ("mail", "renamed@contoso.com"),
        ("userType", "Member"),
    ];
    for (n, (role, template)) in READ_ONLY_ROLES.iter().enumerate() {
        let (_, session) =
            person_with_roles(&t, &format!("reader{n}@contoso.com"), role, &[template]).await;
        for person in [&target, &plain] {
            let path = format!("/admin/users/{person}/edit");
            let form = portal(&t, &session, &path, None).await;
            assert_eq!(
                form.status,
                StatusCode::FORBIDDEN,
                "{role}: {}",
                text(&form)
            );
            let post = portal(&t, &session, &path, Some(&change)).await;
            assert_eq!(
                post.status,
                StatusCode::FORBIDDEN,
                "{role}: {}",
                text(&post)
            );
        }
        // The user page offers no edit link to them either.
        let page = portal(&t, &session, &format!("/admin/users/{plain}"), None).await;
        if page.status == StatusCode::OK {
            assert!(!text(&page).contains("id=\"edit-profile\""), "{role}");
        }
    }
    for person in [&target, &plain] {
        let user = t.get(&format!("/users/{person}")).await.body;
        assert_ne!(user["displayName"], "Renamed", "nothing changed");
    }

    let (_, ua) = person_with_roles(&t, "uma@contoso.com", "Uma", &[USER_ADMINISTRATOR]).await;
    let path = format!("/admin/users/{target}/edit");
    let refused = portal(&t, &ua, &path, Some(&change)).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", text(&refused));
    assert!(text(&refused).contains("Authorization_TargetPrivileged"));
    assert!(text(&refused).contains("error-summary"));
    assert!(
        text(&refused).contains("value=\"renamed@contoso.com\""),
        "input kept"
    );
    let user = t.get(&format!("/users/{target}")).await.body;
    assert_eq!(user["userPrincipalName"], "grace@contoso.com");
    assert_eq!(user["displayName"], "Grace");
    assert_eq!(audits(&t, "Update user", &target, "failure").await.len(), 1);

    let ok = portal(
        &t,
        &ua,
        &format!("/admin/users/{plain}/edit"),
        Some(&change),
    )
    .await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER, "{}", text(&ok));
    let user = t.get(&format!("/users/{plain}")).await.body;
    assert_eq!(user["userPrincipalName"], "renamed@contoso.com");
    t.check_invariants().await;
    t.stop().await;
}
