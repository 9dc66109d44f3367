//! `histcmp`: compare two latency distributions (A = baseline, B = candidate).
//!
//!   histcmp A.hgrm B.hgrm [--policy FILE] [--plot out.svg]
//!   histcmp --a a1.json a2.json a3.json --b b1.json b2.json b3.json [--policy FILE]
//!
//! With several files per side every percentile is the median over the runs.
//! Exit status: 0 no regression (or no policy), 1 regression per policy,
//! 2 bad input.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use percore_benches::histcmp::{self, Policy, Run};

#[derive(Parser, Debug)]
#[command(
    name = "histcmp",
    about = "Compare latency percentiles of A (baseline) and B (candidate): .hgrm or percore-bench JSON files",
    after_help = "A regression is B worse than A by more than the policy's ratio AND its absolute floor,\nfor some percentile the policy names. Policy file example:\n  {\"rules\": {\"p50\": {\"max_ratio\": 1.5, \"min_abs_us\": 30}, \"p99\": {\"max_ratio\": 1.5, \"min_abs_us\": 100}}}"
)]
struct Args {
    /// A and B, one file each (the two-positional form).
    #[arg(num_args = 0..=2)]
    files: Vec<PathBuf>,
    /// Baseline runs (median per percentile).
    #[arg(long = "a", num_args = 1.., conflicts_with = "files")]
    a: Vec<PathBuf>,
    /// Candidate runs (median per percentile).
    #[arg(long = "b", num_args = 1.., conflicts_with = "files")]
    b: Vec<PathBuf>,
    /// Regression policy (JSON); without it the table is informational.
    #[arg(long)]
    policy: Option<PathBuf>,
    /// Draw both percentile curves into this SVG file.
    #[arg(long)]
    plot: Option<PathBuf>,
    /// Names for the sides in the table and the plot.
    #[arg(long, default_value = "A")]
    name_a: String,
    #[arg(long, default_value = "B")]
    name_b: String,
}

fn load_all(paths: &[PathBuf]) -> Result<Vec<Run>, String> {
    paths.iter().map(|p| histcmp::load(p)).collect()
}

fn real_main() -> Result<bool, String> {
    let args = Args::parse();
    let (a_paths, b_paths) = if !args.files.is_empty() {
        if args.files.len() != 2 {
            return Err("give two files (A B) or --a ... --b ...".into());
        }
        (vec![args.files[0].clone()], vec![args.files[1].clone()])
    } else {
        if args.a.is_empty() || args.b.is_empty() {
            return Err("give two files (A B) or --a ... --b ...".into());
        }
        (args.a.clone(), args.b.clone())
    };
    let a = load_all(&a_paths)?;
    let b = load_all(&b_paths)?;
    let policy = match &args.policy {
        Some(p) => Some(Policy::parse(
            &std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?,
        )?),
        None => None,
    };
    let c = histcmp::compare(&a, &b, policy.as_ref(), (&args.name_a, &args.name_b));
    print!("{}", c.table);
    if let Some(out) = &args.plot {
        percore_benches::plot::plot(out, &[(&args.name_a, &a), (&args.name_b, &b)])?;
        println!("plot written to {}", out.display());
    }
    if c.regressions.is_empty() {
        if policy.is_some() {
            println!("histcmp: no regression beyond the policy");
        }
        Ok(true)
    } else {
        for r in &c.regressions {
            println!("REGRESSION {r}");
        }
        println!(
            "histcmp: {} regression(s) beyond the policy",
            c.regressions.len()
        );
        Ok(false)
    }
}

fn main() -> ExitCode {
    match real_main() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("histcmp: {e}");
            ExitCode::from(2)
        }
    }
}
