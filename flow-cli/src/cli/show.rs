//! Runs and steps as people read them: aligned tables, and a run with the
//! last lines its steps wrote.

use std::fmt::Write as _;
use std::time::Duration;

use flow_cli::ops::{RunSummary, RunView, format_time, short_duration};

/// Rows under a header, each column as wide as its widest cell.
pub(crate) fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (k, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(k) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let mut out = String::new();
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut text = String::new();
        for (k, cell) in cells.enumerate() {
            let w = widths.get(k).copied().unwrap_or(0);
            let _ = write!(text, "{cell:<w$}  ");
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(&mut header.iter().copied());
    for row in rows {
        line(&mut row.iter().map(String::as_str));
    }
    out
}

fn or_dash<T: ToString>(v: Option<T>) -> String {
    v.map_or_else(|| "-".to_string(), |v| v.to_string())
}

/// The table of `flow runs`.
pub(crate) fn runs(runs: &[RunSummary]) -> String {
    let rows: Vec<Vec<String>> = runs
        .iter()
        .map(|r| {
            vec![
                r.id.to_string(),
                r.flow.clone(),
                r.state.to_string(),
                format_time(r.created),
                short_duration(r.duration),
                if r.held {
                    or_dash(r.owner.as_deref())
                } else {
                    "-".into()
                },
            ]
        })
        .collect();
    table(
        &["RUN", "FLOW", "STATE", "STARTED", "TOOK", "HELD BY"],
        &rows,
    )
}

/// `flow show RUN`.
pub(crate) fn run(view: &RunView) -> String {
    let r = &view.run;
    let mut out = String::new();
    let _ = writeln!(out, "run      {}", r.id);
    match &r.definition {
        Some(d) => {
            let short = d.get(..12).unwrap_or(d);
            let _ = writeln!(out, "flow     {} (definition {short})", r.flow);
        }
        None => {
            let _ = writeln!(out, "flow     {}", r.flow);
        }
    }
    let mut state = r.state.to_string();
    if r.held {
        let _ = write!(state, ", held by {}", or_dash(r.owner.as_deref()));
    }
    if r.cancel_requested {
        state.push_str(", asked to cancel");
    }
    let _ = writeln!(out, "state    {state}");
    let _ = writeln!(
        out,
        "started  {}, took {}",
        format_time(r.created),
        short_duration(r.duration)
    );
    if !view.params.is_empty() {
        let params: Vec<String> = view
            .params
            .iter()
            .map(|(k, v)| match v {
                serde_json::Value::String(s) => format!("{k}={s}"),
                v => format!("{k}={v}"),
            })
            .collect();
        let _ = writeln!(out, "params   {}", params.join(" "));
    }
    if let Some(dir) = &view.log_dir {
        let _ = writeln!(out, "logs     {dir}");
    }
    out.push('\n');
    let rows: Vec<Vec<String>> = view
        .steps
        .iter()
        .map(|s| {
            let exit = match (s.exit_code, s.signal) {
                (Some(c), _) => c.to_string(),
                (None, Some(sig)) => format!("signal {sig}"),
                _ => "-".into(),
            };
            let undo = match &s.undo {
                None => "-".to_string(),
                Some(u) if u.error.is_some() => "failed".into(),
                Some(u) => match u.duration_ms {
                    Some(ms) => format!("done in {}", short_duration(Duration::from_millis(ms))),
                    None => "done".into(),
                },
            };
            vec![
                s.name.clone(),
                s.state.clone(),
                s.attempts.to_string(),
                or_dash(s.duration.map(short_duration)),
                exit,
                undo,
            ]
        })
        .collect();
    out.push_str(&table(
        &["STEP", "STATE", "TRIES", "TOOK", "EXIT", "UNDO"],
        &rows,
    ));
    let width = view.steps.iter().map(|s| s.name.len()).max().unwrap_or(0);
    let mut tails = String::new();
    for s in &view.steps {
        if let Some(e) = &s.error {
            let _ = writeln!(tails, "{:<width$}  error: {e}", s.name);
        }
        for (mark, text) in [("out", &s.stdout_tail), ("err", &s.stderr_tail)] {
            for line in text.iter().flat_map(|t| t.lines()) {
                let _ = writeln!(tails, "{:<width$}  {mark}| {line}", s.name);
            }
        }
    }
    if !tails.is_empty() {
        out.push('\n');
        out.push_str(&tails);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::table;

    #[test]
    fn columns_are_as_wide_as_their_widest_cell() {
        let t = table(
            &["A", "LONG"],
            &[vec!["xyz".into(), "1".into()], vec!["q".into(), "".into()]],
        );
        assert_eq!(t, "A    LONG\nxyz  1\nq\n");
    }
}
