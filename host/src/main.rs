//! The `xingqiao` binary: parses the command line and hands over to the library.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use std::path::PathBuf;

use xingqiao::cli::plugin::{self, Format};
use xingqiao::cli::project::Lang;
use xingqiao::cli::remote::{Action, Remote};
use xingqiao::cli::{builder, remote, scaffold};
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
    /// Makes a plugin project that builds and passes its tests as written.
    New {
        /// The job_type, also the project's folder name.
        name: String,
        #[arg(long, value_enum)]
        lang: Lang,
        /// Where to write it (default: ./NAME); must not exist or be empty.
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Builds the component of the project in the current folder (or --dir)
    /// and prints the .wasm path.
    Build {
        #[arg(long, default_value = ".")]
        dir: PathBuf,
    },
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
        /// Also runs the DAG for real: each task's params, reply and timing,
        /// then the job's ret_data. Nothing is stored.
        #[arg(long)]
        execute: bool,
        /// Where --execute sends tasks (default: the built-in demo handlers,
        /// served by this process).
        #[arg(long, requires = "execute")]
        handler_base_url: Option<String>,
    },
    /// Uploads a component to the server; it becomes its job type's active version.
    Upload {
        file: PathBuf,
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// Lists the server's job types.
    List {
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// Lists the versions of a job type.
    Versions {
        name: String,
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// Makes VERSION the active version of a job type (roll forward or back).
    Activate {
        name: String,
        version: String,
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// Disables a job type: create_job refuses it until a version is activated.
    Disable {
        name: String,
        #[command(flatten)]
        remote: RemoteArgs,
    },
}

/// The server of the admin commands; the token comes from XINGQIAO_ADMIN_TOKEN.
#[derive(clap::Args)]
struct RemoteArgs {
    /// The server's base URL.
    #[arg(long, env = "XINGQIAO_URL", default_value = remote::DEFAULT_SERVER)]
    server: String,
    /// Prints the server's answer as JSON.
    #[arg(long)]
    json: bool,
}

fn admin(args: RemoteArgs, action: Action) -> Result<String, plugin::CliError> {
    remote::run(&Remote::from_env(args.server, args.json), &action)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The plugin tools print their own output; only warnings belong beside it.
    let default_filter = if matches!(cli.command, Command::Plugin(_)) { "warn" } else { "info" };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter)),
        )
        .init();
    let outcome = match cli.command {
        Command::Serve(args) => return serve(args, Mode::Serve),
        Command::Worker(args) => return serve(args, Mode::Worker),
        Command::Migrate(args) => return serve(args, Mode::Migrate),
        Command::Plugin(command) => match command {
            PluginCommand::New { name, lang, dir } => scaffold::new(&name, lang, dir.as_deref()),
            PluginCommand::Build { dir } => builder::build(&dir),
            PluginCommand::Check { file } => plugin::check(&file),
            PluginCommand::Run { plugin, job_extra, format, execute, handler_base_url } => {
                let execute = execute.then_some(handler_base_url.as_deref());
                plugin::run(&plugin, job_extra.as_deref(), format, execute)
            }
            PluginCommand::Upload { file, remote } => admin(remote, Action::Upload(file)),
            PluginCommand::List { remote } => admin(remote, Action::List),
            PluginCommand::Versions { name, remote } => admin(remote, Action::Versions(name)),
            PluginCommand::Activate { name, version, remote } => {
                admin(remote, Action::Activate { job_type: name, version })
            }
            PluginCommand::Disable { name, remote } => admin(remote, Action::Disable(name)),
        },
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
