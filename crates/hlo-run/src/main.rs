//! `hlo-run`: runs XLA HLO text modules on Vulkan (or the reference interpreter).
//!
//! ```text
//! hlo-run MODULE.hlo [INPUT.npy ...] -o OUT_DIR      run, write out_K.npy
//! hlo-run check MODULE.hlo                           parse + verify, one-line summary
//! hlo-run check --parse-only MODULE.hlo              parse only (XLA's unverified parse)
//! hlo-run print MODULE.hlo                           canonical text
//! hlo-run opt MODULE.hlo --passes=a,b                run passes, print the result
//! hlo-run compile MODULE.hlo --emit plan|wgsl|spirv  show the fusion plan and kernels
//! hlo-run bench MODULE.hlo [INPUTS]                  compile once, time N calls
//! hlo-run devices                                    list Vulkan devices
//! ```
//! Exit status: 0 on success, 2 on bad input (malformed module, wrong inputs),
//! 1 on any other failure.

use clap::{Args, Parser, Subcommand};
use hlo_run::{commands, UserError};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(name = "hlo-run", version, about = "Run XLA HLO text modules on any GPU through Vulkan")]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: commands::RunArgs,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Parse and verify a module; print a one-line summary.
    Check(CheckArgs),
    /// Print a module in canonical HLO text.
    Print(FileArg),
    /// Run passes over a module and print the result.
    Opt(commands::OptArgs),
    /// Compile a module and show the fusion plan, WGSL or SPIR-V.
    Compile(commands::CompileArgs),
    /// Compile once, warm up, time N executions.
    Bench(commands::BenchArgs),
    /// Time each blocked dot and convolution with several block sizes; keep the fastest for
    /// this device (read by later compiles; HLO_AUTOTUNE=off ignores them).
    Tune(commands::TuneArgs),
    /// List the Vulkan devices and their capabilities.
    Devices,
}

#[derive(Args, Debug)]
struct CheckArgs {
    /// The HLO text module (or StableHLO).
    module: PathBuf,
    /// Parse only, without the verifier (as XLA's `ParseAndReturnUnverifiedModule`): shapes
    /// that disagree with their operands, operand counts and the like are not checked.
    #[arg(long)]
    parse_only: bool,
}

#[derive(Args, Debug)]
struct FileArg {
    /// The HLO text module.
    module: PathBuf,
}

fn main() -> ExitCode {
    // Before any thread starts and before the driver loads; `VulkanPrepared::new` may choose
    // one thread instead for a program of small dispatches.
    hlo_run::backend::vulkan::choose_driver_threads(hlo_run::backend::vulkan::DriverThreads::Parallel);
    let cli = Cli::parse();
    hlo_run::init_tracing();
    let res = hlo_run::backend::vulkan::check_env().and_then(|()| match cli.command {
        Some(Command::Check(f)) => commands::check(&f.module, f.parse_only),
        Some(Command::Print(f)) => commands::print(&f.module),
        Some(Command::Opt(args)) => commands::opt(&args),
        Some(Command::Compile(args)) => commands::compile(&args),
        Some(Command::Bench(args)) => commands::bench(&args),
        Some(Command::Tune(args)) => commands::tune(&args),
        Some(Command::Devices) => commands::devices(),
        None => commands::run(&cli.run),
    });
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            if let Some(user) = err.downcast_ref::<UserError>() {
                eprintln!("{user}");
                ExitCode::from(2)
            } else {
                eprintln!("error: {err:#}");
                ExitCode::from(1)
            }
        }
    }
}
