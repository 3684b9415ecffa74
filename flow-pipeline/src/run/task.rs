//! The task of a step: runs its command with the values it reads, logs its
//! outputs to files, and reverts by running its undo command.

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use flow_core::{Args, Context, Exec, Outcome, Outputs, RevertInput, Signature, Task, Value};

use super::process::{self, Ended, Launch};
use super::report::{LogTail, StepError, StepReport};
use super::settings::Settings;
use crate::model::{Command, ParamType, Pipeline, Step};
use crate::shell::VALUE_PREFIX;
use crate::template::Template;

/// The input that names a run's directory of logs (a run's key).
pub(crate) const RUN_KEY: &str = "pipeline:run";

/// The input that names the definition a run runs (its hash): journaled with
/// the run's other inputs, it ties the run to its definition in the store.
pub(crate) const DEFINITION: &str = "pipeline:definition";

/// The type of a value a step reads.
#[derive(Clone, Copy, Debug)]
enum Kind {
    Text,
    Int,
    Float,
    Bool,
}

/// One step, ready to run.
pub(crate) struct StepTask {
    step: Step,
    /// The values the step reads, in the order of its signature (after the
    /// run's key).
    inputs: Vec<(String, Kind)>,
    /// The position of the step's own output among its outputs.
    settings: Arc<Settings>,
}

impl StepTask {
    pub(crate) fn new(pipeline: &Pipeline, step: &Step, settings: Arc<Settings>) -> Self {
        let own = step.output();
        let mut names: Vec<&str> = step
            .templates(false)
            .into_iter()
            .chain(step.templates(true))
            .flat_map(|t| t.values().map(|(n, _)| n))
            .filter(|n| Some(*n) != own)
            .collect();
        names.sort_unstable();
        names.dedup();
        let inputs = names
            .into_iter()
            .map(|n| {
                let kind = match pipeline.params.iter().find(|p| p.name == n).map(|p| &p.ty) {
                    Some(ParamType::Int) => Kind::Int,
                    Some(ParamType::Float) => Kind::Float,
                    Some(ParamType::Bool) => Kind::Bool,
                    _ => Kind::Text,
                };
                (n.to_string(), kind)
            })
            .collect();
        StepTask {
            step: step.clone(),
            inputs,
            settings,
        }
    }

    /// The symbol under which the step's report is published.
    pub(crate) fn report_symbol(step: &str) -> String {
        format!("{step}:report")
    }

    /// The run's key and the text of each value, from the arguments.
    fn values(&self, args: &Args) -> Result<(String, Vec<(String, String)>), StepError> {
        let bad = |name: &str, reason: String| StepError::Value {
            step: self.step.name.clone(),
            name: name.to_string(),
            reason,
        };
        let key = args
            .get::<String>(0)
            .map_err(|e| bad(RUN_KEY, e.to_string()))?
            .clone();
        if !crate::parse::is_step_name(&key) {
            return Err(bad(
                RUN_KEY,
                format!("{key:?} cannot name a directory of logs"),
            ));
        }
        let mut values = Vec::with_capacity(self.inputs.len() + 1);
        for (i, (name, kind)) in self.inputs.iter().enumerate() {
            let text = match kind {
                Kind::Text => args.get::<String>(i + 1).cloned(),
                Kind::Int => args.get::<i64>(i + 1).map(|v| v.to_string()),
                Kind::Float => args.get::<f64>(i + 1).map(|v| v.to_string()),
                Kind::Bool => args.get::<bool>(i + 1).map(|v| v.to_string()),
            }
            .map_err(|e| bad(name, e.to_string()))?;
            if text.contains('\0') {
                return Err(bad(name, "it holds a NUL byte".into()));
            }
            values.push((name.clone(), text));
        }
        Ok((key, values))
    }

    /// Runs the step's command (`undo` false) or its undo command.
    async fn run(
        self: Arc<Self>,
        key: String,
        values: Vec<(String, String)>,
        ctx: Context,
        undo: bool,
    ) -> Result<StepReport, StepError> {
        let step = &self.step;
        let (command, timeout) = match (&step.undo, undo) {
            (Some(u), true) => (&u.command, u.timeout),
            _ => (&step.command, step.timeout),
        };
        let dir = self.settings.logs().join(&key);
        let log_error = |path: &PathBuf, source| StepError::Log {
            step: step.name.clone(),
            path: path.display().to_string(),
            source,
        };
        std::fs::create_dir_all(&dir).map_err(|e| log_error(&dir, e))?;
        let base = if undo {
            format!("{}.undo", step.name)
        } else {
            step.name.clone()
        };
        // A copy of this step left running by a runner that died is stopped
        // before the step runs again.
        let pid_path = dir.join(format!("{base}.pid"));
        super::stale::stop_leftover(&pid_path, self.settings.grace_period()).await;
        let out_path = dir.join(format!("{base}.stdout"));
        let err_path = dir.join(format!("{base}.stderr"));
        // A step run again (after a crash, or a retry) starts its logs anew.
        let stdout = std::fs::File::create(&out_path).map_err(|e| log_error(&out_path, e))?;
        let stderr = std::fs::File::create(&err_path).map_err(|e| log_error(&err_path, e))?;

        let lookup = |name: &str| -> &str {
            values
                .iter()
                .find(|(n, _)| n == name)
                .map_or("", |(_, v)| v.as_str())
        };
        let render = |t: &Template| t.render(lookup);
        let (program, args): (OsString, Vec<OsString>) = match command {
            Command::Args(list) => {
                let mut all = list.iter().map(|t| OsString::from(render(t)));
                let program = all.next().unwrap_or_default();
                (program, all.collect())
            }
            Command::Script { text, .. } => (
                self.settings.shell_path().as_os_str().to_owned(),
                vec!["-c".into(), text.into(), step.name.clone().into()],
            ),
        };
        let mut env: Vec<(OsString, OsString)> = vec![
            ("FLOW_STEP".into(), step.name.clone().into()),
            ("FLOW_ATTEMPT".into(), ctx.attempt().to_string().into()),
            ("FLOW_RUN".into(), key.clone().into()),
        ];
        for (name, value) in &values {
            env.push((format!("{VALUE_PREFIX}{name}").into(), value.into()));
        }
        for (name, t) in &step.env {
            env.push((name.into(), render(t).into()));
        }
        let launch = Launch {
            program: program.clone(),
            args,
            env,
            dir: step.dir.as_ref().map(|t| PathBuf::from(render(t))),
            stdout,
            stderr,
        };
        let child = process::spawn(launch).map_err(|source| StepError::Spawn {
            step: step.name.clone(),
            program: program.to_string_lossy().into_owned(),
            source,
        })?;
        if let Some(pid) = child.id() {
            super::stale::record(&pid_path, pid);
        }
        let grace = self.settings.grace_period();
        // An undo runs to its end even when the run was cancelled: it is
        // what a cancel asks for.
        let cancel_ctx = ctx.clone();
        let cancelled = async move {
            if undo {
                std::future::pending::<()>().await;
            }
            cancel_ctx.cancelled().await;
        };
        let waited = process::wait(child, timeout, cancelled, grace).await;
        super::stale::forget(&pid_path);
        let (ended, status) = waited.map_err(|source| StepError::Spawn {
            step: step.name.clone(),
            program: program.to_string_lossy().into_owned(),
            source,
        })?;
        let tail = self.settings.tail_bytes();
        let report = StepReport {
            code: status.code(),
            signal: std::os::unix::process::ExitStatusExt::signal(&status),
            stdout: LogTail::read(&out_path, tail).map_err(|e| log_error(&out_path, e))?,
            stderr: LogTail::read(&err_path, tail).map_err(|e| log_error(&err_path, e))?,
        };
        match ended {
            Ended::Exited(s) if s.success() => Ok(report),
            Ended::Exited(_) => Err(StepError::Failed {
                step: step.name.clone(),
                report: Box::new(report),
            }),
            Ended::TimedOut => Err(StepError::TimedOut {
                step: step.name.clone(),
                timeout: timeout.unwrap_or(Duration::ZERO),
                grace,
                report: Box::new(report),
            }),
            Ended::Cancelled => Err(StepError::Cancelled {
                step: step.name.clone(),
                report: Box::new(report),
            }),
        }
    }

    /// The step's output value: its standard output, without the line ends
    /// that close it.
    fn output(&self, report: &StepReport, name: &str) -> Result<String, StepError> {
        let fail = |reason: String| StepError::Output {
            step: self.step.name.clone(),
            output: name.to_string(),
            reason,
        };
        let max = self.settings.max_output_bytes();
        if report.stdout.bytes > max as u64 {
            return Err(fail(format!(
                "it printed {} bytes, more than the {max} a value may hold: write large \
                 results to a file and pass its name",
                report.stdout.bytes
            )));
        }
        let bytes = std::fs::read(&report.stdout.path).map_err(|e| fail(e.to_string()))?;
        let mut text =
            String::from_utf8(bytes).map_err(|_| fail("it is not UTF-8 text".to_string()))?;
        if text.contains('\0') {
            return Err(fail("it holds a NUL byte".to_string()));
        }
        let trimmed = text.trim_end_matches('\n').len();
        text.truncate(trimmed);
        Ok(text)
    }
}

/// The task the engine runs for a step.
pub(crate) struct Shared(pub(crate) Arc<StepTask>);

impl Task for Shared {
    fn signature(&self) -> Signature {
        let t = &self.0;
        let mut sig = Signature::new().requires::<String>(RUN_KEY);
        for (name, kind) in &t.inputs {
            sig = match kind {
                Kind::Text => sig.requires::<String>(name.clone()),
                Kind::Int => sig.requires::<i64>(name.clone()),
                Kind::Float => sig.requires::<f64>(name.clone()),
                Kind::Bool => sig.requires::<bool>(name.clone()),
            };
        }
        sig = sig.provides::<StepReport>(StepTask::report_symbol(&t.step.name));
        if let Some(output) = t.step.output() {
            sig = sig.provides::<String>(output.to_string());
        }
        sig
    }

    fn execute(&self, args: Args, ctx: &Context) -> Exec {
        let task = self.0.clone();
        let (key, values) = match task.values(&args) {
            Ok(v) => v,
            Err(e) => return Exec::Ready(Err(e.into())),
        };
        let ctx = ctx.clone();
        Exec::future(async move {
            let report = task.clone().run(key, values, ctx, false).await?;
            let mut outputs = Outputs::new();
            if let Some(name) = task.step.output() {
                let value = task.output(&report, name)?;
                outputs = outputs.with(report).with(value);
            } else {
                outputs = outputs.with(report);
            }
            Ok(outputs)
        })
    }

    fn revert(&self, input: RevertInput, ctx: &Context) -> Exec<Option<Value>> {
        let task = self.0.clone();
        // Only a step that succeeded has something to undo.
        let Outcome::Success(outputs) = &input.outcome else {
            return Exec::Ready(Ok(None));
        };
        if task.step.undo.is_none() {
            return Exec::Ready(Ok(None));
        }
        let (key, mut values) = match task.values(&input.args) {
            Ok(v) => v,
            Err(e) => return Exec::Ready(Err(e.into())),
        };
        if let (Some(name), Some(v)) = (
            task.step.output(),
            outputs
                .values()
                .get(1)
                .and_then(|v| v.downcast_ref::<String>()),
        ) {
            values.push((name.to_string(), v.clone()));
        }
        let ctx = ctx.clone();
        Exec::future(async move {
            let report = task.run(key, values, ctx, true).await?;
            Ok(Some(Value::new(report)))
        })
    }
}
