//! Reading the builders' output: the classic builder's text stream and BuildKit's status
//! messages (`moby.buildkit.trace`): which step runs, what it printed, whether it came from
//! the cache, how long it took, and what to show when it fails. Pure: it takes what the
//! Engine sent and returns events.

use bollard::moby::buildkit::v1::{StatusResponse, Vertex};
use std::collections::{HashMap, VecDeque};

/// How many output lines of the current step are kept for the failure message.
pub const KEPT_LINES: usize = 10;

/// Something worth telling the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildEvent {
    /// `Step 2/5 : RUN make`.
    Step(String),
    /// A line printed by the step (a `RUN` command's output).
    Output(String),
    /// The builder's own chatter (` ---> Using cache`, `Removing intermediate container`).
    Detail(String),
    /// A BuildKit step began (`id`: its vertex digest; several may run at once).
    Began { id: String, name: String },
    /// A BuildKit step ended: `[2/5] RUN make DONE 1.2s`, `… CACHED` or `… ERROR`.
    Ended { id: String, line: String },
    /// A line a BuildKit step printed, with the step's label (`[2/5]`, `[build 3/4]`) to tell
    /// apart the output of steps running in parallel.
    StepOutput {
        id: String,
        label: String,
        line: String,
    },
}

/// Follows the build output, line by line.
#[derive(Debug, Default)]
pub struct StepTracker {
    partial: String,
    step: Option<String>,
    last_lines: VecDeque<String>,
}

impl StepTracker {
    /// Takes one `stream` chunk (it may hold several lines, or part of one).
    pub fn feed(&mut self, text: &str) -> Vec<BuildEvent> {
        self.partial.push_str(text);
        let mut events = Vec::new();
        while let Some(end) = self.partial.find('\n') {
            let line: String = self.partial.drain(..=end).collect();
            if let Some(event) = self.line(line.trim_end_matches(['\n', '\r'])) {
                events.push(event);
            }
        }
        events
    }

    /// Ends the stream: a last line without a newline.
    pub fn finish(&mut self) -> Vec<BuildEvent> {
        let rest = std::mem::take(&mut self.partial);
        self.line(rest.trim_end()).into_iter().collect()
    }

    fn line(&mut self, line: &str) -> Option<BuildEvent> {
        // The Engine colours a RUN step's stderr with terminal escapes; they mean nothing
        // in a log or an error message.
        let line = &strip_escapes(line);
        if line.trim().is_empty() {
            return None;
        }
        if line.starts_with("Step ") && line.contains(" : ") {
            self.step = Some(line.to_owned());
            self.last_lines.clear();
            return Some(BuildEvent::Step(line.to_owned()));
        }
        if line.starts_with(" ---> ")
            || line.starts_with("Removing intermediate container")
            || line.starts_with("Successfully built")
            || line.starts_with("Successfully tagged")
        {
            return Some(BuildEvent::Detail(line.to_owned()));
        }
        if self.last_lines.len() == KEPT_LINES {
            self.last_lines.pop_front();
        }
        self.last_lines.push_back(line.to_owned());
        Some(BuildEvent::Output(line.to_owned()))
    }

    /// The step that ran last (`Step 2/5 : RUN make`).
    pub fn current_step(&self) -> Option<&str> {
        self.step.as_deref()
    }

    /// The last output lines of the current step.
    pub fn last_lines(&self) -> impl Iterator<Item = &str> {
        self.last_lines.iter().map(String::as_str)
    }

    /// The failure message: the step, the Engine's error and the step's last lines.
    pub fn failure(&self, name: &str, engine_error: &str) -> String {
        let mut message = match &self.step {
            Some(step) => format!("building {name} failed at {step}: {}", engine_error.trim()),
            None => format!("building {name} failed: {}", engine_error.trim()),
        };
        if !self.last_lines.is_empty() {
            message.push_str("\nlast output:");
            for line in &self.last_lines {
                message.push_str("\n  ");
                message.push_str(line);
            }
        }
        message
    }
}

/// Follows BuildKit's status messages. BuildKit runs independent steps in parallel, so each
/// step (a *vertex*, keyed by digest) keeps its own partial line and its own last lines.
#[derive(Debug, Default)]
pub struct VertexTracker {
    vertices: HashMap<String, VertexState>,
    /// The step that reported an error, with its last output lines.
    failed: Option<String>,
}

#[derive(Debug, Default)]
struct VertexState {
    name: String,
    announced: bool,
    done: bool,
    partial: String,
    last_lines: VecDeque<String>,
}

/// BuildKit's own bookkeeping steps (`[internal] load .dockerignore`, `exporting to image`):
/// shown with `-v` only; the Dockerfile's steps are `[i/n] INSTRUCTION …` or `[stage i/n] …`.
fn is_dockerfile_step(name: &str) -> bool {
    name.starts_with('[') && !name.starts_with("[internal]")
}

impl VertexTracker {
    /// Takes one status message.
    pub fn feed(&mut self, status: &StatusResponse) -> Vec<BuildEvent> {
        let mut events = Vec::new();
        for vertex in &status.vertexes {
            self.vertex(vertex, &mut events);
        }
        for log in &status.logs {
            let id = &log.vertex;
            let state = self.vertices.entry(id.clone()).or_default();
            state.partial.push_str(&String::from_utf8_lossy(&log.msg));
            while let Some(end) = state.partial.find('\n') {
                let line: String = state.partial.drain(..=end).collect();
                let line = strip_escapes(line.trim_end_matches(['\n', '\r']));
                if line.trim().is_empty() {
                    continue;
                }
                if state.last_lines.len() == KEPT_LINES {
                    state.last_lines.pop_front();
                }
                state.last_lines.push_back(line.clone());
                events.push(BuildEvent::StepOutput {
                    id: id.clone(),
                    label: label(&state.name).to_owned(),
                    line,
                });
            }
        }
        events
    }

    fn vertex(&mut self, vertex: &Vertex, events: &mut Vec<BuildEvent>) {
        let id = &vertex.digest;
        let state = self.vertices.entry(id.clone()).or_default();
        if state.name.is_empty() {
            state.name = strip_escapes(&vertex.name);
        }
        if state.done {
            return;
        }
        let shown = is_dockerfile_step(&state.name);
        let mut say = |event: BuildEvent| {
            events.push(match (shown, event) {
                (true, event) => event,
                (false, BuildEvent::Began { name, .. }) => BuildEvent::Detail(name),
                (false, BuildEvent::Ended { line, .. }) => BuildEvent::Detail(line),
                (false, event) => event,
            })
        };
        let ended = |line: String| BuildEvent::Ended {
            id: id.clone(),
            line,
        };
        if vertex.cached {
            state.done = true;
            say(ended(format!("{} CACHED", state.name)));
            return;
        }
        if vertex.started.is_some() && !state.announced {
            state.announced = true;
            say(BuildEvent::Began {
                id: id.clone(),
                name: state.name.clone(),
            });
        }
        if !vertex.error.is_empty() {
            state.done = true;
            say(ended(format!("{} ERROR", state.name)));
            let mut failure = format!("{}: {}", state.name, vertex.error.trim());
            append_last_lines(&mut failure, &state.last_lines);
            // The first step to fail is the cause; the others were cancelled because of it.
            self.failed.get_or_insert(failure);
            return;
        }
        if let (Some(started), Some(completed)) = (&vertex.started, &vertex.completed) {
            state.done = true;
            let seconds = (completed.seconds - started.seconds) as f64
                + f64::from(completed.nanos - started.nanos) / 1e9;
            say(ended(format!(
                "{} DONE {:.1}s",
                state.name,
                seconds.max(0.0)
            )));
        }
    }

    /// The failure message: the step that failed, the Engine's error and its last lines.
    pub fn failure(&self, name: &str, engine_error: &str) -> String {
        match &self.failed {
            // The step's own error says the same as the Engine's, with the step's name.
            Some(step) => format!("building {name} failed at {step}"),
            None => format!("building {name} failed: {}", engine_error.trim()),
        }
    }
}

fn append_last_lines(message: &mut String, lines: &VecDeque<String>) {
    if !lines.is_empty() {
        message.push_str("\nlast output:");
        for line in lines {
            message.push_str("\n  ");
            message.push_str(line);
        }
    }
}

/// A step's label, the bracketed start of its name: `[2/5]` of `[2/5] RUN make`, `[build 3/4]`
/// of `[build 3/4] COPY . .` (the whole name when it has none).
fn label(name: &str) -> &str {
    match (name.starts_with('['), name.find(']')) {
        (true, Some(end)) => &name[..=end],
        _ => name,
    }
}

/// `text` without ANSI escape sequences (`ESC [ ... letter`).
fn strip_escapes(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(ch) = chars.next() {
        if ch == '\u{1b}' {
            if chars.peek() == Some(&'[') {
                chars.next();
                for next in chars.by_ref() {
                    if next.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(ch);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_output_and_details_are_told_apart_across_chunks() {
        let mut t = StepTracker::default();
        let mut events = t.feed("Step 1/2 : FROM scratch\n ---> \nStep 2/2 : RUN ma");
        events.extend(t.feed("ke\n ---> Running in 0123\nhello\nwor"));
        events.extend(t.feed("ld\n"));
        events.extend(t.finish());
        assert_eq!(
            events,
            [
                BuildEvent::Step("Step 1/2 : FROM scratch".into()),
                BuildEvent::Detail(" ---> ".into()),
                BuildEvent::Step("Step 2/2 : RUN make".into()),
                BuildEvent::Detail(" ---> Running in 0123".into()),
                BuildEvent::Output("hello".into()),
                BuildEvent::Output("world".into()),
            ]
        );
        assert_eq!(t.current_step(), Some("Step 2/2 : RUN make"));
    }

    #[test]
    fn terminal_escapes_are_dropped() {
        let mut t = StepTracker::default();
        let events = t.feed("\u{1b}[91mboom\n\u{1b}[0m");
        assert_eq!(events, [BuildEvent::Output("boom".into())]);
        assert!(t.finish().is_empty());
    }

    #[test]
    fn the_failure_names_the_step_and_its_last_lines() {
        let mut t = StepTracker::default();
        t.feed("Step 1/1 : RUN x\n");
        for i in 0..15 {
            t.feed(&format!("line {i}\n"));
        }
        let message = t.failure("api", "The command 'x' returned a non-zero code: 3");
        assert!(message.starts_with(
            "building api failed at Step 1/1 : RUN x: The command 'x' returned a non-zero code: 3\nlast output:\n  line 5\n"
        ));
        assert!(message.ends_with("  line 14"));
        assert_eq!(t.last_lines().count(), KEPT_LINES);
    }

    fn vertex(digest: &str, name: &str, started: Option<i64>, completed: Option<i64>) -> Vertex {
        let mut v = Vertex {
            digest: digest.into(),
            name: name.into(),
            ..Vertex::default()
        };
        for (slot, seconds) in [(&mut v.started, started), (&mut v.completed, completed)] {
            if let Some(seconds) = seconds {
                let time = slot.get_or_insert_with(Default::default);
                time.seconds = seconds;
            }
        }
        v
    }

    fn log(digest: &str, text: &str) -> bollard::moby::buildkit::v1::VertexLog {
        bollard::moby::buildkit::v1::VertexLog {
            vertex: digest.into(),
            msg: text.as_bytes().to_vec(),
            ..Default::default()
        }
    }

    fn output(line: &str) -> BuildEvent {
        BuildEvent::StepOutput {
            id: "c".into(),
            label: "[2/3]".into(),
            line: line.into(),
        }
    }

    #[test]
    fn a_step_is_labelled_by_its_bracketed_start() {
        assert_eq!(label("[2/5] RUN make"), "[2/5]");
        assert_eq!(label("[build 3/4] COPY . ."), "[build 3/4]");
        assert_eq!(label("exporting to image"), "exporting to image");
    }

    #[test]
    fn buildkit_steps_are_lines_with_cached_durations_and_the_failure() {
        let mut t = VertexTracker::default();
        let mut events = t.feed(&StatusResponse {
            vertexes: vec![
                vertex("a", "[internal] load .dockerignore", Some(1), Some(1)),
                vertex("b", "[1/3] COPY busybox /bin/busybox", None, None),
                vertex("c", "[2/3] RUN make", Some(10), None),
            ],
            ..Default::default()
        });
        let mut cached = vertex("b", "[1/3] COPY busybox /bin/busybox", Some(9), Some(9));
        cached.cached = true;
        let mut failed = vertex("c", "[2/3] RUN make", Some(10), Some(12));
        failed.error = "exit code: 2".into();
        events.extend(t.feed(&StatusResponse {
            vertexes: vec![cached],
            logs: vec![log("c", "compiling\nerr"), log("c", "or: boom\n")],
            ..Default::default()
        }));
        events.extend(t.feed(&StatusResponse {
            vertexes: vec![failed],
            ..Default::default()
        }));
        assert_eq!(
            events,
            [
                BuildEvent::Detail("[internal] load .dockerignore".into()),
                BuildEvent::Detail("[internal] load .dockerignore DONE 0.0s".into()),
                BuildEvent::Began {
                    id: "c".into(),
                    name: "[2/3] RUN make".into()
                },
                BuildEvent::Ended {
                    id: "b".into(),
                    line: "[1/3] COPY busybox /bin/busybox CACHED".into()
                },
                output("compiling"),
                output("error: boom"),
                BuildEvent::Ended {
                    id: "c".into(),
                    line: "[2/3] RUN make ERROR".into()
                },
            ]
        );
        assert_eq!(
            t.failure("api", "executor failed"),
            "building api failed at [2/3] RUN make: exit code: 2\nlast output:\n  compiling\n  error: boom"
        );
    }
}
