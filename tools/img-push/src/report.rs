//! The closing report: GitHub Actions step outputs and step summary, and a line on stderr
//! (kept apart so that shared Actions helpers can replace the first two in one place).

use crate::display::short_digest;
use crate::record::JobResult;
use common::Ui;
use common::envelope::Pushed;
use std::collections::BTreeSet;
use std::time::Instant;

/// Step outputs and the step summary under GitHub Actions; a closing line on stderr.
/// `verb` says what happened to the tags that were not already there.
pub fn report(results: &[JobResult], started: Instant, dry_run: bool, verb: &str, ui: &Ui) {
    let entries: Vec<(&str, &Pushed)> = results
        .iter()
        .flat_map(|r| r.pushed.iter().map(move |p| (r.source.name.as_str(), p)))
        .collect();
    set_outputs(&entries, ui);
    ui.summary(&summary(&entries, verb));
    let skipped = entries.iter().filter(|(_, p)| p.skipped).count();
    ui.line(&format!(
        "img-push: {} tag(s) {}, {skipped} already there, in {:.1}s",
        entries.len() - skipped,
        if dry_run { "to push (dry run)" } else { verb },
        started.elapsed().as_secs_f64()
    ));
}

/// `digest` and `reference` of the last entry; with several images, `<name>_digest` and
/// `<name>_reference` of each image's first.
fn set_outputs(entries: &[(&str, &Pushed)], ui: &Ui) {
    if let Some((_, last)) = entries.last() {
        ui.set_output("digest", &last.digest);
        ui.set_output("reference", &last.reference);
    }
    let names: BTreeSet<&str> = entries.iter().map(|(name, _)| *name).collect();
    if names.len() > 1 {
        for name in &names {
            if let Some((_, first)) = entries.iter().find(|(n, _)| n == name) {
                let key = output_key(name);
                ui.set_output(&format!("{key}_digest"), &first.digest);
                ui.set_output(&format!("{key}_reference"), &first.reference);
            }
        }
    }
}

/// An image name as a step output key (`team/api-v2` → `team_api_v2`).
fn output_key(name: &str) -> String {
    name.replace(['/', '.', '-'], "_")
}

/// The step summary: a Markdown table, one row per tag.
fn summary(entries: &[(&str, &Pushed)], verb: &str) -> String {
    let mut summary = String::from("| image | pushed to | digest | result |\n|---|---|---|---|\n");
    for (name, entry) in entries {
        summary.push_str(&format!(
            "| {name} | {}:{} | `{}` | {} |\n",
            entry.repository,
            entry.tag,
            short_digest(&entry.digest),
            match (entry.dry_run, entry.skipped) {
                (true, _) => "dry run",
                (_, true) => "already there",
                _ => verb,
            }
        ));
    }
    summary
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_has_a_row_per_tag() {
        let pushed = |tag: &str, skipped: bool| Pushed {
            repository: "r.example.com/api".into(),
            tag: tag.into(),
            digest: format!("sha256:{}", "a".repeat(64)),
            skipped,
            ..Pushed::default()
        };
        let (one, two) = (pushed("1", false), pushed("2", true));
        let table = summary(&[("api", &one), ("api", &two)], "promoted");
        assert_eq!(
            table,
            "| image | pushed to | digest | result |\n|---|---|---|---|\n\
             | api | r.example.com/api:1 | `sha256:aaaaaaaaaaaa` | promoted |\n\
             | api | r.example.com/api:2 | `sha256:aaaaaaaaaaaa` | already there |\n"
        );
        assert_eq!(output_key("team/api-v2.1"), "team_api_v2_1");
    }
}
