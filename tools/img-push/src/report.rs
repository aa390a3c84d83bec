//! The closing report: GitHub Actions step outputs and step summary (through `common`'s
//! helpers, shared with the other tools), and a line on stderr.

use crate::record::JobResult;
use common::Ui;
use common::actions::{ItemOutputs, SummaryTable, item_outputs};
use common::envelope::Pushed;
use common::short::short_digest;
use std::time::Instant;

/// Step outputs and the step summary under GitHub Actions; a closing line on stderr.
/// `verb` says what happened to the tags that were not already there.
pub fn report(results: &[JobResult], started: Instant, dry_run: bool, verb: &str, ui: &Ui) {
    let entries: Vec<(&str, &Pushed)> = results
        .iter()
        .flat_map(|r| r.pushed.iter().map(move |p| (r.source.name.as_str(), p)))
        .collect();
    ui.set_outputs(&item_outputs(&outputs(&entries)));
    ui.summary(&summary(&entries, verb));
    let skipped = entries.iter().filter(|(_, p)| p.skipped).count();
    ui.line(&format!(
        "img-push: {} tag(s) {}, {skipped} already there, in {:.1}s",
        entries.len() - skipped,
        if dry_run { "to push (dry run)" } else { verb },
        started.elapsed().as_secs_f64()
    ));
}

/// Each tag's `digest` and `reference`, under its image's name (`common` decides the keys:
/// the last tag's as they are, and `<name>_digest` per image when there are several).
fn outputs(entries: &[(&str, &Pushed)]) -> Vec<ItemOutputs> {
    entries
        .iter()
        .map(|(name, pushed)| ItemOutputs {
            name: (*name).to_owned(),
            values: vec![
                ("digest", pushed.digest.clone()),
                ("reference", pushed.reference.clone()),
            ],
        })
        .collect()
}

/// The step summary: a Markdown table, one row per tag.
fn summary(entries: &[(&str, &Pushed)], verb: &str) -> String {
    let mut table = SummaryTable::new(&["image", "pushed to", "digest", "result"]);
    for (name, entry) in entries {
        let digest = match short_digest(&entry.digest) {
            "" => "(unknown)".to_owned(),
            short => format!("`{short}`"),
        };
        let result = match (entry.dry_run, entry.skipped) {
            (true, _) => "dry run",
            (_, true) => "already there",
            _ => verb,
        };
        table.row([
            (*name).to_owned(),
            format!("{}:{}", entry.repository, entry.tag),
            digest,
            result.to_owned(),
        ]);
    }
    table.to_markdown()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pushed(tag: &str, skipped: bool) -> Pushed {
        Pushed {
            repository: "r.example.com/api".into(),
            tag: tag.into(),
            digest: format!("sha256:{}", "a".repeat(64)),
            reference: format!("r.example.com/api@sha256:{}", "a".repeat(64)),
            skipped,
            ..Pushed::default()
        }
    }

    #[test]
    fn the_summary_has_a_row_per_tag() {
        let (one, two) = (pushed("1", false), pushed("2", true));
        let table = summary(&[("api", &one), ("api", &two)], "promoted");
        assert_eq!(
            table,
            "| image | pushed to | digest | result |\n|---|---|---|---|\n\
             | api | r.example.com/api:1 | `aaaaaaaaaaaa` | promoted |\n\
             | api | r.example.com/api:2 | `aaaaaaaaaaaa` | already there |\n"
        );
    }

    #[test]
    fn outputs_name_each_image_when_there_are_several() {
        let (api, auth) = (pushed("1", false), pushed("2", false));
        let keys: Vec<String> = item_outputs(&outputs(&[("api", &api), ("auth-server", &auth)]))
            .into_iter()
            .map(|(key, _)| key)
            .collect();
        assert_eq!(
            keys,
            [
                "digest",
                "reference",
                "api_digest",
                "api_reference",
                "auth_server_digest",
                "auth_server_reference"
            ]
        );
    }
}
