//! When to try again: exponential backoff with jitter ([`backoff_delay`]) and the server's
//! `Retry-After` ([`parse_retry_after`]: seconds or an HTTP date).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use llmrouter_core::rng::{SplitMix64, fnv1a64};

use super::ClientOptions;

/// Exponential backoff with jitter: before retry `n` (1-based), a delay drawn uniformly from
/// `[d/2, d]` where `d = min(max_backoff, backoff * 2^(n-1))`.
pub fn backoff_delay(options: &ClientOptions, retry: u32, rng: &mut SplitMix64) -> Duration {
    let exp = 2f64.powi(retry.saturating_sub(1).min(30) as i32);
    let full = (options.backoff.as_secs_f64() * exp).min(options.max_backoff.as_secs_f64());
    Duration::from_secs_f64(full * (0.5 + 0.5 * rng.next_f64()))
}

pub(super) fn jitter_seed(url: &str) -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0);
    nanos ^ fnv1a64(url.as_bytes()) ^ COUNTER.fetch_add(0x9E37_79B9, Ordering::Relaxed)
}

/// `Retry-After` as a delay: whole seconds, or an HTTP date (IMF-fixdate,
/// `Sun, 06 Nov 1994 08:49:37 GMT`) relative to `now`. Other forms give `None`.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = parse_http_date(value)?;
    let now = now.duration_since(UNIX_EPOCH).ok()?.as_secs();
    Some(Duration::from_secs(when.saturating_sub(now)))
}

/// Seconds since the Unix epoch of an IMF-fixdate.
fn parse_http_date(value: &str) -> Option<u64> {
    let mut parts = value.split_whitespace();
    let (_weekday, day, month, year, time, zone) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if zone != "GMT" || parts.next().is_some() {
        return None;
    }
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let month = MONTHS.iter().position(|m| *m == month)? as i64 + 1;
    let day: i64 = day.parse().ok()?;
    let year: i64 = year.parse().ok()?;
    let mut hms = time.split(':').map(|p| p.parse::<i64>().ok());
    let (h, m, s) = (hms.next()??, hms.next()??, hms.next()??);
    if !(1..=31).contains(&day) || h > 23 || m > 59 || s > 60 {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days * 86_400 + h * 3600 + m * 60 + s).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_in_seconds_or_as_a_date() {
        let now = UNIX_EPOCH + Duration::from_secs(784_111_777); // Sun, 06 Nov 1994 08:49:37 GMT
        assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after("Sun, 06 Nov 1994 08:49:47 GMT", now), Some(Duration::from_secs(10)));
        assert_eq!(parse_retry_after("Sun, 06 Nov 1994 08:49:00 GMT", now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn backoff_doubles_within_jitter_and_caps() {
        let options = ClientOptions {
            backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(350),
            ..ClientOptions::default()
        };
        let mut rng = SplitMix64::new(1);
        for (retry, full) in [(1, 100.0), (2, 200.0), (3, 350.0), (9, 350.0)] {
            for _ in 0..50 {
                let ms = backoff_delay(&options, retry, &mut rng).as_secs_f64() * 1000.0;
                assert!((full / 2.0 - 1e-6..=full + 1e-6).contains(&ms), "retry {retry}: {ms} ms");
            }
        }
    }
}
