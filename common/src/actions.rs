//! GitHub Actions workflow commands and files (DESIGN.md, "Human output").
//!
//! Commands go to stderr: the runner reads workflow commands from both streams, and stdout
//! belongs to the envelope.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;

/// Where a job's outputs and step summary go; present only under `GITHUB_ACTIONS=true`.
#[derive(Debug, Clone, Default)]
pub struct Actions {
    output_file: Option<PathBuf>,
    summary_file: Option<PathBuf>,
}

impl Actions {
    /// Reads `GITHUB_ACTIONS`, `GITHUB_OUTPUT` and `GITHUB_STEP_SUMMARY` from the environment.
    pub fn from_env() -> Option<Actions> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// As [`Actions::from_env`], with the variables looked up by `var` (for tests).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Option<Actions> {
        if var("GITHUB_ACTIONS").as_deref() != Some("true") {
            return None;
        }
        let path = |name: &str| var(name).filter(|v| !v.is_empty()).map(PathBuf::from);
        Some(Actions {
            output_file: path("GITHUB_OUTPUT"),
            summary_file: path("GITHUB_STEP_SUMMARY"),
        })
    }

    /// Appends `key=value` to `$GITHUB_OUTPUT` (heredoc form when the value spans lines).
    pub fn set_output(&self, key: &str, value: &str) -> std::io::Result<()> {
        match &self.output_file {
            Some(path) => append(path, &output_entry(key, value)),
            None => Ok(()),
        }
    }

    /// Whether a step summary is written (`$GITHUB_STEP_SUMMARY` is set).
    pub fn writes_summary(&self) -> bool {
        self.summary_file.is_some()
    }

    /// Appends Markdown to `$GITHUB_STEP_SUMMARY`.
    pub fn append_summary(&self, markdown: &str) -> std::io::Result<()> {
        match &self.summary_file {
            Some(path) => {
                let mut text = markdown.to_owned();
                if !text.ends_with('\n') {
                    text.push('\n');
                }
                append(path, &text)
            }
            None => Ok(()),
        }
    }
}

fn append(path: &PathBuf, text: &str) -> std::io::Result<()> {
    let mut file = OpenOptions::new().create(true).append(true).open(path)?;
    file.write_all(text.as_bytes())
}

/// One entry of `$GITHUB_OUTPUT`. Multi-line values use a delimiter that cannot occur in
/// the value, as GitHub documents.
pub fn output_entry(key: &str, value: &str) -> String {
    if !value.contains('\n') && !value.contains('\r') {
        return format!("{key}={value}\n");
    }
    let mut delimiter = format!("ghadelimiter_{:016x}", rand::random::<u64>());
    while value.contains(&delimiter) {
        delimiter = format!("ghadelimiter_{:016x}", rand::random::<u64>());
    }
    format!("{key}<<{delimiter}\n{value}\n{delimiter}\n")
}

/// One item's step outputs (an image, a service): its name and its `(key, value)` pairs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemOutputs {
    /// The item's name (`api-server`, `dev/api`); it prefixes its keys when there are several.
    pub name: String,
    /// The outputs, each under its plain key (`digest`, `outcome`).
    pub values: Vec<(&'static str, String)>,
}

/// The step outputs of a run over several items, as every tool writes them: each key of
/// the last item as it is (`digest=…`), and, when the items have more than one name, each
/// name's keys again as `<name>_<key>` (from the first item of that name), the name made a
/// valid key by [`output_key`].
pub fn item_outputs(items: &[ItemOutputs]) -> Vec<(String, String)> {
    let mut outputs: Vec<(String, String)> = Vec::new();
    let Some(last) = items.last() else {
        return outputs;
    };
    outputs.extend(
        last.values
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone())),
    );
    let mut names: Vec<&str> = Vec::new();
    for item in items {
        if !names.contains(&item.name.as_str()) {
            names.push(&item.name);
        }
    }
    if names.len() > 1 {
        for name in names {
            let first = items
                .iter()
                .find(|i| i.name == name)
                .expect("a name of the items");
            let prefix = output_key(name);
            outputs.extend(
                first
                    .values
                    .iter()
                    .map(|(k, v)| (format!("{prefix}_{k}"), v.clone())),
            );
        }
    }
    outputs
}

/// A name made fit for an output key: `/`, `.` and `-` become `_` (`api-server` →
/// `api_server`).
pub fn output_key(name: &str) -> String {
    name.replace(['/', '.', '-'], "_")
}

/// A Markdown table for `$GITHUB_STEP_SUMMARY`, optionally under a `### title`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SummaryTable {
    title: Option<String>,
    columns: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl SummaryTable {
    /// An empty table with these column headings.
    pub fn new(columns: &[&str]) -> SummaryTable {
        SummaryTable {
            title: None,
            columns: columns.iter().map(|c| (*c).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    /// The same table under a `### title` heading.
    pub fn titled(mut self, title: &str) -> SummaryTable {
        self.title = Some(title.to_owned());
        self
    }

    /// Adds a row. Cells are text: a `|` in one is escaped, a line break becomes a space.
    pub fn row<S: Into<String>>(&mut self, cells: impl IntoIterator<Item = S>) {
        self.rows.push(
            cells
                .into_iter()
                .map(|c| c.into().replace('|', "\\|").replace(['\r', '\n'], " "))
                .collect(),
        );
    }

    /// The Markdown, ending in a newline.
    pub fn to_markdown(&self) -> String {
        let mut text = match &self.title {
            Some(title) => format!("### {title}\n\n"),
            None => String::new(),
        };
        let line = |cells: &[String]| format!("| {} |\n", cells.join(" | "));
        text.push_str(&line(&self.columns));
        text.push_str(&format!("|{}\n", "---|".repeat(self.columns.len())));
        for row in &self.rows {
            text.push_str(&line(row));
        }
        text
    }
}

/// Escapes the data part of a workflow command (`::error::DATA`).
pub fn escape_data(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escapes a property of a workflow command (`title=…`).
pub fn escape_property(text: &str) -> String {
    escape_data(text).replace(':', "%3A").replace(',', "%2C")
}

/// `::group::TITLE`
pub fn group_line(title: &str) -> String {
    format!("::group::{}", escape_data(title))
}

/// `::endgroup::`
pub fn endgroup_line() -> &'static str {
    "::endgroup::"
}

/// `::error title=TOOL::MESSAGE`
pub fn error_line(tool: &str, message: &str) -> String {
    format!(
        "::error title={}::{}",
        escape_property(tool),
        escape_data(message)
    )
}

/// `::add-mask::SECRET`
pub fn mask_line(secret: &str) -> String {
    format!("::add-mask::{}", escape_data(secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn actions_in(dir: &tempfile::TempDir) -> Actions {
        let out = dir.path().join("out");
        let summary = dir.path().join("summary");
        Actions::from_vars(|name| match name {
            "GITHUB_ACTIONS" => Some("true".into()),
            "GITHUB_OUTPUT" => Some(out.display().to_string()),
            "GITHUB_STEP_SUMMARY" => Some(summary.display().to_string()),
            _ => None,
        })
        .expect("actions detected")
    }

    #[test]
    fn detected_only_when_github_actions_is_true() {
        assert!(Actions::from_vars(|_| None).is_none());
        assert!(Actions::from_vars(|n| (n == "GITHUB_ACTIONS").then(|| "false".into())).is_none());
    }

    #[test]
    fn outputs_are_appended_as_key_value_lines() {
        let dir = tempfile::tempdir().unwrap();
        let actions = actions_in(&dir);
        std::fs::write(dir.path().join("out"), "earlier=1\n").unwrap();
        actions.set_output("digest", "sha256:abc").unwrap();
        actions.set_output("version", "1.4.0").unwrap();
        let text = std::fs::read_to_string(dir.path().join("out")).unwrap();
        assert_eq!(text, "earlier=1\ndigest=sha256:abc\nversion=1.4.0\n");
    }

    #[test]
    fn multi_line_outputs_use_a_delimiter() {
        let entry = output_entry("notes", "a\nb");
        let lines: Vec<&str> = entry.lines().collect();
        assert_eq!(lines.len(), 4);
        let delimiter = lines[0].strip_prefix("notes<<").unwrap();
        assert_eq!(&lines[1..3], ["a", "b"]);
        assert_eq!(lines[3], delimiter);
    }

    #[test]
    fn summary_is_appended_with_a_trailing_newline() {
        let dir = tempfile::tempdir().unwrap();
        let actions = actions_in(&dir);
        actions.append_summary("| a |").unwrap();
        actions.append_summary("| b |\n").unwrap();
        let text = std::fs::read_to_string(dir.path().join("summary")).unwrap();
        assert_eq!(text, "| a |\n| b |\n");
    }

    #[test]
    fn commands_escape_their_data() {
        assert_eq!(
            error_line("img-push", "100% bad\nline"),
            "::error title=img-push::100%25 bad%0Aline"
        );
        assert_eq!(mask_line("s3cr3t"), "::add-mask::s3cr3t");
        assert_eq!(group_line("build api"), "::group::build api");
    }

    #[test]
    fn one_item_writes_plain_keys_and_several_names_write_prefixed_keys_too() {
        let item = |name: &str, digest: &str| ItemOutputs {
            name: name.into(),
            values: vec![("digest", digest.into())],
        };
        assert_eq!(
            item_outputs(&[item("api", "a1")]),
            [("digest".to_owned(), "a1".to_owned())]
        );
        assert_eq!(
            item_outputs(&[item("api", "a1"), item("api", "a2")]),
            [("digest".to_owned(), "a2".to_owned())]
        );
        let several = item_outputs(&[
            item("api", "a1"),
            item("api", "a2"),
            item("auth-server", "b"),
        ]);
        let pairs: Vec<(&str, &str)> = several
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            pairs,
            [
                ("digest", "b"),
                ("api_digest", "a1"),
                ("auth_server_digest", "b")
            ]
        );
        assert!(item_outputs(&[]).is_empty());
        assert_eq!(output_key("team/api.v2-x"), "team_api_v2_x");
    }

    #[test]
    fn summary_tables_are_markdown_with_their_cells_escaped() {
        let mut table = SummaryTable::new(&["target", "last"]).titled("health-wait");
        table.row(["http://x/", "status 503 | retry\nlater"]);
        assert_eq!(
            table.to_markdown(),
            "### health-wait\n\n| target | last |\n|---|---|\n| http://x/ | status 503 \\| retry later |\n"
        );
        assert_eq!(SummaryTable::new(&["a"]).to_markdown(), "| a |\n|---|\n");
    }
}
