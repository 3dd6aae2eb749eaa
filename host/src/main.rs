//! The `xingqiao` binary: parses the command line and hands over to the library.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use xingqiao::cli::plugin::{self, Format};
use xingqiao::config::{Config, ServeArgs};

#[derive(Parser)]
#[command(name = "xingqiao", version, about = "XingQiao (星桥): workflow orchestration with wasm job types")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs the server: HTTP API, engine and task workers.
    Serve(ServeArgs),
    /// Runs task workers only (no HTTP API); give it `--redis-url` and the
    /// database of the `serve` instances.
    Worker(ServeArgs),
    /// Applies database migrations, then exits (`serve` applies them too).
    Migrate(ServeArgs),
    /// Tools for plugin (job type) authors.
    #[command(subcommand)]
    Plugin(PluginCommand),
}

#[derive(Subcommand)]
enum PluginCommand {
    /// Checks that FILE is a component the server can load, and prints its metadata.
    Check { file: String },
    /// Dry-runs params_check and workflow, and prints the DAG.
    Run {
        /// A .wasm file, or `builtin:NAME` for an embedded demo (builtin:hello).
        plugin: String,
        /// job_extra as a JSON object.
        #[arg(long)]
        job_extra: Option<String>,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Serve(args) => return serve(args, Mode::Serve),
        Command::Worker(args) => return serve(args, Mode::Worker),
        Command::Migrate(args) => return serve(args, Mode::Migrate),
        Command::Plugin(PluginCommand::Check { file }) => plugin::check(&file),
        Command::Plugin(PluginCommand::Run { plugin, job_extra, format }) => {
            plugin::run(&plugin, job_extra.as_deref(), format)
        }
    };
    match outcome {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::from(u8::try_from(err.exit_code()).unwrap_or(1))
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Serve,
    Worker,
    Migrate,
}

fn serve(args: ServeArgs, mode: Mode) -> ExitCode {
    let config = match Config::load(args).and_then(|config| {
        if mode == Mode::Serve {
            config.check_exposure()?;
        }
        Ok(config)
    }) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(async {
        if mode == Mode::Migrate {
            return xingqiao::server::migrate(&config).await;
        }
        let shutdown = xingqiao::server::shutdown_signal();
        if mode == Mode::Worker {
            return xingqiao::server::run(config, None, shutdown).await;
        }
        let listener = std::net::TcpListener::bind(&config.bind)
            .map_err(|err| anyhow::anyhow!("cannot listen on {}: {err}", config.bind))?;
        xingqiao::server::run(config, Some(listener), shutdown).await
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
