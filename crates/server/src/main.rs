//! The `stormproof` binary: runs the server and administers its data
//! directory. It wires the crates together and decides exit codes and
//! messages; it holds no logic of its own beyond that.

mod admin;
mod audit;
mod cli;
mod config;
mod demo;
mod detection;
mod incident;
mod serve;
mod webhook_receiver;

use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

// Serving mail allocates and frees many small buffers on many threads; the
// system allocator spent about a third of an Email/get's CPU time there.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn init_logging(default_level: &str, json: bool) {
    let filter =
        EnvFilter::try_from_env("STORMPROOF_LOG").unwrap_or_else(|_| EnvFilter::new(default_level));
    // Logs go to stderr, so the admin commands' stdout carries only results
    // (a token, a client id) that scripts can capture.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let config = match config::Config::load(cli.config.as_deref(), &cli.data) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("error: {error:#}");
            return ExitCode::from(2);
        }
    };
    let json_logs = config.log.format.as_deref() == Some("json");
    let result = match cli.command {
        cli::Command::Serve(args) => {
            init_logging("info", json_logs);
            serve::run(&cli.data, config, args)
        }
        cli::Command::Audit(command) => {
            init_logging("warn", json_logs);
            audit::run(&cli.data, &config, command)
        }
        cli::Command::Detect(args) => {
            init_logging("warn", json_logs);
            incident::detect(&config, args)
        }
        cli::Command::Demo(cli::DemoCommand::Storm0558) => {
            init_logging("warn", json_logs);
            demo::storm_0558()
        }
        command => {
            init_logging("warn", json_logs);
            admin::run(&cli.data, &config, command)
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
