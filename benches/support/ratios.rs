//! Interleaved rounds: each contender serves a batch of requests in turn,
//! round after round (the order rotating), and the ratio of two contenders
//! is taken within each round, then its median over the rounds. On a
//! shared, noisy machine this is what holds still: a burst of load slows
//! every contender of the round alike, where criterion's one contender
//! after the other sees it hit one and miss the next.

use std::time::Instant;

/// A contender: its name and one request.
pub struct Contender<'a> {
    pub name: &'static str,
    pub run: Box<dyn FnMut() + 'a>,
}

/// How many rounds, and requests per contender per round.
#[derive(Clone, Copy)]
pub struct Plan {
    pub rounds: usize,
    pub batch: usize,
}

impl Plan {
    /// 11 rounds of 3,000 requests; `--quick`: 3 rounds of 300.
    pub fn from_args() -> Plan {
        if std::env::args().any(|a| a == "--quick") {
            Plan {
                rounds: 3,
                batch: 300,
            }
        } else {
            Plan {
                rounds: 11,
                batch: 3000,
            }
        }
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Runs the rounds and prints, for each contender, the median time per
/// request, the median over rounds of `reference / contender` (below
/// 1.00: the reference, the first contender, is faster) with its range,
/// and the median over rounds of `contender - reference` in ns.
pub fn compare(title: &str, plan: Plan, contenders: &mut [Contender<'_>]) {
    let n = contenders.len();
    // Warm-up: pools filled, caches warm.
    for c in contenders.iter_mut() {
        for _ in 0..plan.batch.min(200) {
            (c.run)();
        }
    }
    let mut times = vec![Vec::with_capacity(plan.rounds); n];
    for round in 0..plan.rounds {
        for k in 0..n {
            let i = (k + round) % n;
            let started = Instant::now();
            for _ in 0..plan.batch {
                (contenders[i].run)();
            }
            times[i].push(started.elapsed().as_nanos() as f64 / plan.batch as f64);
        }
    }
    println!(
        "{title}: ns per request, median of {} rounds of {} (ratio: {} / contender, per round)",
        plan.rounds, plan.batch, contenders[0].name
    );
    for i in 0..n {
        let ratios: Vec<f64> = (0..plan.rounds)
            .map(|r| times[0][r] / times[i][r])
            .collect();
        let delta = median(
            (0..plan.rounds)
                .map(|r| times[i][r] - times[0][r])
                .collect(),
        );
        let (lo, hi) = ratios
            .iter()
            .fold((f64::MAX, f64::MIN), |(lo, hi), &r| (lo.min(r), hi.max(r)));
        println!(
            "  {:<24} {:>10.0}   ratio {:.3} (range {:.3}-{:.3})   {:+.0} ns",
            contenders[i].name,
            median(times[i].clone()),
            median(ratios),
            lo,
            hi,
            delta
        );
    }
}
