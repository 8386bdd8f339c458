//! The benign simulated week: how many alerts the detection engine raises
//! over a fortnight of ordinary mail use, where every alert is a false
//! positive. The first week is what a new deployment sees while it learns;
//! the second is its steady state. Prints, per detector and severity,
//! alerts per 1,000 users per day, the figures quoted in DETECTIONS.md.
//!
//! ```text
//! cargo run -p stormproof-detect --example benign_week --release
//! cargo run -p stormproof-detect --example benign_week --release -- \
//!     --seed 7 --users 1000 --learning 7d --rules rules --examples 3 \
//!     --config my-detect.toml
//! ```
//!
//! `--config` reads a `[detect]` section's contents (TOML) as the settings
//! to start from; the simulated operators' exemptions and delegations are
//! added to it.

// An example that cannot set up has nothing to report: it exits with a
// message, and its tables are its output.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod world;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use stormproof_detect::{Alert, Engine};
use stormproof_store::SqliteStore;

use world::{DAY_MS, START_MS, World, WorldSpec};

const DAYS: u32 = 14;

struct Args {
    seed: u64,
    users: Option<usize>,
    learning: Option<Duration>,
    rules: Option<PathBuf>,
    examples: usize,
    config: Option<PathBuf>,
}

fn args() -> Result<Args, String> {
    let mut args = Args {
        seed: 1,
        users: None,
        learning: None,
        rules: None,
        examples: 0,
        config: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--seed" => args.seed = value()?.parse().map_err(|e| format!("--seed: {e}"))?,
            "--users" => args.users = Some(value()?.parse().map_err(|e| format!("--users: {e}"))?),
            "--learning" => {
                let text = value()?;
                args.learning =
                    Some(humantime::parse_duration(&text).map_err(|e| format!("--learning: {e}"))?);
            }
            "--rules" => args.rules = Some(PathBuf::from(value()?)),
            "--config" => args.config = Some(PathBuf::from(value()?)),
            "--examples" => {
                args.examples = value()?.parse().map_err(|e| format!("--examples: {e}"))?
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(args)
}

/// Alerts counted by (detector, severity), per week.
#[derive(Default)]
struct Tally {
    counts: BTreeMap<(String, &'static str), [u64; 2]>,
    examples: BTreeMap<String, Vec<String>>,
}

impl Tally {
    fn add(&mut self, alert: &Alert, keep_examples: usize) {
        let week = usize::from(alert_ms(alert) >= START_MS + 7 * DAY_MS);
        let detector = match &alert.rule {
            Some(rule) => format!("{} {rule}", alert.detector),
            None => alert.detector.clone(),
        };
        self.counts
            .entry((detector.clone(), alert.severity.as_str()))
            .or_default()[week] += 1;
        let examples = self.examples.entry(detector).or_default();
        if week == 1 && examples.len() < keep_examples {
            examples.push(alert.summary.clone());
        }
    }
}

fn alert_ms(alert: &Alert) -> i64 {
    humantime::parse_rfc3339(&alert.time)
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn main() -> ExitCode {
    let args = match args() {
        Ok(args) => args,
        Err(error) => {
            eprintln!("benign_week: {error}");
            return ExitCode::FAILURE;
        }
    };
    let spec = match args.users {
        Some(users) => WorldSpec::small(args.seed, users),
        None => WorldSpec::standard(args.seed),
    };
    let mut world = World::new(&spec);
    let mut config = match &args.config {
        Some(path) => match std::fs::read_to_string(path)
            .map_err(|e| e.to_string())
            .and_then(|text| toml::from_str(&text).map_err(|e| e.to_string()))
        {
            Ok(base) => world.operator_settings(base),
            Err(error) => {
                eprintln!("benign_week: {}: {error}", path.display());
                return ExitCode::FAILURE;
            }
        },
        None => world.detect_config(),
    };
    if let Some(learning) = args.learning {
        config.learning_window = learning;
    }
    config.sigma.rules_dir = args.rules.clone();
    let dir = match tempfile::tempdir() {
        Ok(dir) => dir,
        Err(error) => {
            eprintln!("benign_week: temporary directory: {error}");
            return ExitCode::FAILURE;
        }
    };
    let store = match SqliteStore::open(dir.path()) {
        Ok(store) => Arc::new(store),
        Err(error) => {
            eprintln!("benign_week: store: {error}");
            return ExitCode::FAILURE;
        }
    };
    let mut engine = match Engine::new(&config, store) {
        Ok(engine) => engine,
        Err(error) => {
            eprintln!("benign_week: engine: {error}");
            return ExitCode::FAILURE;
        }
    };

    let users = world.users();
    let mut tally = Tally::default();
    let mut events = [0u64; 2];
    let started = Instant::now();
    for day in 0..=DAYS {
        let batch = if day < DAYS {
            world.next_day()
        } else {
            world.finish()
        };
        for event in &batch {
            let week = usize::from(
                event.time.as_str()
                    >= stormproof_audit::format_time_ms(START_MS + 7 * DAY_MS).as_str(),
            );
            events[week] += 1;
            for alert in engine.process(event) {
                tally.add(&alert, args.examples);
            }
        }
    }
    if let Err(error) = engine.flush() {
        eprintln!("benign_week: flush: {error}");
    }
    let elapsed = started.elapsed();

    let per_day = |n: u64| n as f64 * 1000.0 / users as f64 / 7.0;
    println!(
        "Benign simulated fortnight: {} tenants, {users} users, seed {}",
        spec.tenants.len(),
        args.seed
    );
    println!(
        "events: {} in week 1, {} in week 2 ({:.0} events/s including generation)",
        events[0],
        events[1],
        (events[0] + events[1]) as f64 / elapsed.as_secs_f64()
    );
    println!(
        "learning_window {}{}; operator settings: {} exempt actor(s), {} delegated mailbox(es), exempt clients {:?}{}",
        humantime::format_duration(config.learning_window),
        args.config
            .as_ref()
            .map(|c| format!(", settings from {}", c.display()))
            .unwrap_or_default(),
        config.non_owner_access.exempt_actors.len(),
        config.non_owner_access.delegates.len(),
        config.bulk_access.exempt_clients,
        args.rules
            .as_ref()
            .map(|r| format!("; Sigma rules from {}", r.display()))
            .unwrap_or_default(),
    );
    println!();
    println!(
        "{:<58} {:<9} {:>14} {:>9} {:>14} {:>9}",
        "detector", "severity", "week 1 alerts", "/1k/day", "week 2 alerts", "/1k/day"
    );
    let mut totals: BTreeMap<&str, [u64; 2]> = BTreeMap::new();
    for ((detector, severity), [w1, w2]) in &tally.counts {
        println!(
            "{detector:<58} {severity:<9} {w1:>14} {:>9.2} {w2:>14} {:>9.2}",
            per_day(*w1),
            per_day(*w2)
        );
        let total = totals.entry(severity).or_default();
        total[0] += w1;
        total[1] += w2;
    }
    if tally.counts.is_empty() {
        println!("(no alerts)");
    }
    println!();
    for (severity, [w1, w2]) in &totals {
        println!(
            "{:<58} {severity:<9} {w1:>14} {:>9.2} {w2:>14} {:>9.2}",
            "all",
            per_day(*w1),
            per_day(*w2)
        );
    }
    for (detector, examples) in &tally.examples {
        if examples.is_empty() {
            continue;
        }
        println!();
        println!("{detector}, week 2:");
        for example in examples {
            println!("  {example}");
        }
    }
    ExitCode::SUCCESS
}
