//! Reading the classic builder's output stream: which step runs, what it printed, and what
//! to show when it fails. Pure: it takes the stream's text and returns events.

use std::collections::VecDeque;

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
}
