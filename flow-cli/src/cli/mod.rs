//! The command line over the operations: parses the arguments, calls
//! [`flow_cli::ops`], and prints for people (tables, a live view) or for
//! programs (JSON).

mod args;
mod commands;
mod exit;
mod live;
mod plain;
mod prompt;
mod serve;
mod show;
mod watch;

use std::process::ExitCode;

use clap::Parser;

use args::{Cli, Command};
use flow_cli::ops::{Access, OpsError, Store, StoreLocation};

/// Writes a line to standard output; a closed pipe (`flow runs | head`) is
/// no error.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, $($arg)*);
        let _ = stdout.flush();
    }};
}
pub(crate) use out;

/// Writes a line to standard error.
macro_rules! note {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr().lock(), $($arg)*);
    }};
}
pub(crate) use note;

pub(crate) fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            note!("flow: cannot start: {e}");
            return ExitCode::from(exit::FAILED);
        }
    };
    let code = runtime.block_on(dispatch(cli));
    // Steps left running by a second Ctrl-C are not waited for.
    runtime.shutdown_background();
    ExitCode::from(code)
}

/// Where the command's store is, and how to open it.
pub(crate) struct StoreArgs {
    location: StoreLocation,
    logs: Option<std::path::PathBuf>,
}

impl StoreArgs {
    pub(crate) async fn open(&self, access: Access) -> Result<Store, OpsError> {
        Store::open(&self.location, self.logs.clone(), access).await
    }
}

async fn dispatch(cli: Cli) -> u8 {
    let store = StoreArgs {
        location: StoreLocation::parse(&cli.store),
        logs: cli.logs,
    };
    let result = match cli.command {
        Command::Check { files } => commands::check(&files),
        Command::Run {
            file,
            params,
            engine,
        } => watch::run(&store, &file, &params, &engine).await,
        Command::Runs {
            state,
            flow,
            since,
            limit,
            output,
        } => commands::runs(&store, state, flow, since, limit, output.output).await,
        Command::Show { run, tail, output } => {
            commands::show(&store, &run, tail, output.output).await
        }
        Command::Logs {
            run,
            step,
            follow,
            undo,
        } => commands::logs(&store, &run, &step, follow, undo).await,
        Command::Resume { run, wait, engine } => watch::resume(&store, &run, wait, &engine).await,
        Command::Cancel { run, wait, engine } => watch::cancel(&store, &run, wait, &engine).await,
        Command::Rerun { run, engine } => watch::rerun(&store, &run, &engine).await,
        Command::Prune { before, dry_run } => commands::prune(&store, &before, dry_run).await,
        Command::Graph { target, format } => commands::graph(&store, &target, format).await,
        Command::Post { file, params } => commands::post(&store, &file, &params).await,
        Command::Conductor {
            pipelines,
            name,
            concurrency,
            lease,
            poll,
        } => commands::conductor(&store, &pipelines, name, concurrency, lease, poll).await,
        Command::Serve {
            bind,
            token,
            pipelines,
            public,
            jobs,
        } => serve::serve(&store, bind, token, &pipelines, public, jobs).await,
        Command::Completions { shell } => {
            commands::completions(shell);
            Ok(exit::OK)
        }
    };
    match result {
        Ok(code) => code,
        // Problems are drawn with their files: no prefix.
        Err(e @ OpsError::Problems { .. }) => {
            note!("{e}");
            exit::code(&e)
        }
        Err(e) => {
            note!("flow: {e}");
            exit::code(&e)
        }
    }
}
