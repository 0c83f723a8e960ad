//! A line diff of two texts, for the policy editor's review step: which lines of the stored
//! policy's JSON a save removes and which it adds. The longest common subsequence of lines,
//! computed on a table: policies are a few hundred lines at most, and past a bound the diff
//! shows the whole old text removed and the new one added rather than spend the memory.

use serde::Serialize;

/// What happens to one line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    Same,
    Removed,
    Added,
    /// Unchanged lines left out between two changes.
    Skipped,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DiffLine {
    pub change: Change,
    /// The line; for [`Change::Skipped`], how many lines were left out.
    pub text: String,
}

/// The most cells the table may have (rows × columns).
const MAX_CELLS: usize = 4_000_000;

/// The lines of `after` against `before`, with `context` unchanged lines kept around each
/// change and the rest skipped.
pub fn diff(before: &str, after: &str, context: usize) -> Vec<DiffLine> {
    let old: Vec<&str> = before.lines().collect();
    let new: Vec<&str> = after.lines().collect();
    let full = if (old.len() + 1).saturating_mul(new.len() + 1) > MAX_CELLS {
        old.iter()
            .map(|l| (Change::Removed, *l))
            .chain(new.iter().map(|l| (Change::Added, *l)))
            .collect()
    } else {
        walk(&old, &new)
    };
    trim(full, context)
}

/// Every line of both texts in order, each marked.
fn walk<'a>(old: &[&'a str], new: &[&'a str]) -> Vec<(Change, &'a str)> {
    let (n, m) = (old.len(), new.len());
    // common[i][j]: the length of the longest common subsequence of old[i..] and new[j..].
    let width = m + 1;
    let mut common = vec![0u32; (n + 1) * width];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            common[i * width + j] = if old[i] == new[j] {
                common[(i + 1) * width + j + 1] + 1
            } else {
                common[(i + 1) * width + j].max(common[i * width + j + 1])
            };
        }
    }
    let mut out = Vec::with_capacity(n.max(m));
    let (mut i, mut j) = (0, 0);
    while i < n && j < m {
        if old[i] == new[j] {
            out.push((Change::Same, old[i]));
            i += 1;
            j += 1;
        } else if common[(i + 1) * width + j] >= common[i * width + j + 1] {
            out.push((Change::Removed, old[i]));
            i += 1;
        } else {
            out.push((Change::Added, new[j]));
            j += 1;
        }
    }
    out.extend(old[i..].iter().map(|l| (Change::Removed, *l)));
    out.extend(new[j..].iter().map(|l| (Change::Added, *l)));
    out
}

/// Keeps `context` unchanged lines either side of each change; longer unchanged runs become
/// one skipped line.
fn trim(lines: Vec<(Change, &str)>, context: usize) -> Vec<DiffLine> {
    let changed: Vec<usize> = lines
        .iter()
        .enumerate()
        .filter(|(_, (c, _))| *c != Change::Same)
        .map(|(i, _)| i)
        .collect();
    let near = |i: usize| changed.iter().any(|&c| c.abs_diff(i) <= context);
    let mut out = Vec::new();
    let mut skipped = 0usize;
    for (i, (change, text)) in lines.into_iter().enumerate() {
        if change != Change::Same || near(i) {
            if skipped > 0 {
                out.push(DiffLine {
                    change: Change::Skipped,
                    text: skipped.to_string(),
                });
                skipped = 0;
            }
            out.push(DiffLine {
                change,
                text: text.to_string(),
            });
        } else {
            skipped += 1;
        }
    }
    if skipped > 0 && !out.is_empty() {
        out.push(DiffLine {
            change: Change::Skipped,
            text: skipped.to_string(),
        });
    }
    out
}

/// Whether a diff changes anything.
pub fn changes(lines: &[DiffLine]) -> bool {
    lines
        .iter()
        .any(|l| matches!(l.change, Change::Added | Change::Removed))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(lines: &[DiffLine]) -> Vec<(Change, &str)> {
        lines.iter().map(|l| (l.change, l.text.as_str())).collect()
    }

    #[test]
    fn a_changed_line_is_removed_and_added_with_context_around_it() {
        let before = "a\nb\nc\nd\ne\nf\ng";
        let after = "a\nb\nc\nD\ne\nf\ng\nh";
        let lines = diff(before, after, 1);
        assert_eq!(
            kinds(&lines),
            vec![
                (Change::Skipped, "2"),
                (Change::Same, "c"),
                (Change::Removed, "d"),
                (Change::Added, "D"),
                (Change::Same, "e"),
                (Change::Skipped, "1"),
                (Change::Same, "g"),
                (Change::Added, "h"),
            ]
        );
        assert!(changes(&lines));
    }

    #[test]
    fn the_same_text_has_no_changes() {
        let lines = diff("x\ny", "x\ny", 3);
        assert!(!changes(&lines));
        assert!(diff("x\ny", "x\ny", 0).is_empty());
    }

    #[test]
    fn texts_past_the_bound_show_whole() {
        let big: String = (0..2100).map(|i| format!("{i}\n")).collect();
        let lines = diff(&big, &format!("{big}x"), 0);
        assert_eq!(
            lines.iter().filter(|l| l.change == Change::Removed).count(),
            2100
        );
        assert_eq!(
            lines.iter().filter(|l| l.change == Change::Added).count(),
            2101
        );
    }
}
