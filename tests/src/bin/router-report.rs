//! Benchmark: train one router on a config's training split and report its test-split figures,
//! training time, peak memory and routing throughput, next to the reference points.
//!
//!     cargo run --release -p llmrouter-tests --bin router-report -- configs/llmrouter_dc.yaml knnrouter [cost_weight]
//!
//! One router per process, so that the peak memory is that router's.

use std::process::ExitCode;

use llmrouter_tests::report::{header, peak_memory_mib, references, row, run_router};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 2 {
        eprintln!("usage: router-report <config.yaml> <router> [cost_weight]");
        return ExitCode::from(2);
    }
    let cost_weight = match args.get(2).map(|w| w.parse::<f64>()) {
        None => None,
        Some(Ok(w)) => Some(w),
        Some(Err(e)) => {
            eprintln!("error: cost_weight: {e}");
            return ExitCode::from(2);
        }
    };
    let dir = std::env::temp_dir().join(format!("router-report-{}", std::process::id()));
    let model = dir.join(format!("{}.json", args[1]));
    let result = run_router(std::path::Path::new(&args[0]), &args[1], &model, cost_weight);
    let _ = std::fs::remove_dir_all(&dir);
    match result {
        Ok((run, test)) => {
            let weights = llmrouter_core::MetricWeights { cost: cost_weight.unwrap_or(0.0), ..Default::default() };
            println!("{} on {} ({} test queries, cost weight {})", args[1], args[0], test.len(), weights.cost);
            println!("{}", header());
            println!("{}", row(&run.summary));
            for r in references(&test, weights) {
                println!("{}", row(&r));
            }
            let n = test.len() as f64;
            println!("training time        {:.2} s", run.train_secs);
            println!("routing              {:.0} queries/s (batch, embeddings included)", n / run.route_secs);
            if let Some(t) = run.route_secs_without_embedding {
                println!("routing              {:.0} queries/s (batch, embeddings precomputed)", n / t);
            }
            if let Some(mib) = peak_memory_mib() {
                println!("peak memory          {mib:.0} MiB (whole process: data, training, routing)");
            }
            let shares: Vec<String> = run
                .summary
                .shares
                .iter()
                .filter(|(_, v)| **v > 0.0)
                .map(|(k, v)| format!("{k} {:.1}%", v * 100.0))
                .collect();
            println!("shares               {}", shares.join(", "));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
