//! Times as people write them on a command line, and as the operations show
//! them: seconds since the Unix epoch inside, RFC 3339 in UTC outside.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::OpsError;

/// Reads a time written as a date (`2026-05-01`, midnight UTC), a date and
/// time in UTC (`2026-05-01T14:30:00Z`, `2026-05-01 14:30`: the `Z`, the
/// seconds and their fraction may be left out), or how long before `now` (`90m`,
/// `2h`, `7days`, `1h 30m`): seconds since the Unix epoch.
///
/// ```
/// use flow_cli::ops::parse_time;
/// assert_eq!(parse_time("1970-01-02", 0.0).unwrap(), 86_400.0);
/// assert_eq!(parse_time("1970-01-01T00:01:00Z", 0.0).unwrap(), 60.0);
/// assert_eq!(parse_time("2h", 10_000.0).unwrap(), 2_800.0);
/// assert!(parse_time("yesterday-ish", 0.0).is_err());
/// ```
///
/// # Errors
/// [`OpsError::BadTime`] for text that is none of these.
pub fn parse_time(text: &str, now: f64) -> Result<f64, OpsError> {
    let bad = || OpsError::BadTime {
        text: text.to_string(),
    };
    let t = text.trim();
    if t.is_empty() {
        return Err(bad());
    }
    if t.as_bytes()[0].is_ascii_digit() && t.contains('-') {
        let mut full = t.trim_end_matches('Z').replacen(' ', "T", 1);
        match full.len() {
            10 => full.push_str("T00:00:00"),
            16 => full.push_str(":00"),
            _ => {}
        }
        let at = humantime::parse_rfc3339_weak(&full).map_err(|_| bad())?;
        return Ok(unix(at));
    }
    let ago = humantime::parse_duration(t).map_err(|_| bad())?;
    Ok(now - ago.as_secs_f64())
}

fn unix(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// A time (seconds since the Unix epoch) in RFC 3339, UTC, to the second:
/// `2026-05-01T14:30:00Z`.
///
/// ```
/// assert_eq!(flow_cli::ops::format_time(86_400.5), "1970-01-02T00:00:00Z");
/// ```
pub fn format_time(secs: f64) -> String {
    let d = Duration::try_from_secs_f64(secs.max(0.0)).unwrap_or_default();
    humantime::format_rfc3339_seconds(UNIX_EPOCH + d).to_string()
}

/// A time in RFC 3339, UTC, to the millisecond (for JSON).
pub(crate) fn format_time_ms(secs: f64) -> String {
    let d = Duration::try_from_secs_f64(secs.max(0.0)).unwrap_or_default();
    humantime::format_rfc3339_millis(UNIX_EPOCH + d).to_string()
}

/// A duration as a person reads it: `850ms`, `1.2s`, `3m04s`, `2h05m`.
///
/// ```
/// use std::time::Duration;
/// use flow_cli::ops::short_duration;
/// assert_eq!(short_duration(Duration::from_millis(850)), "850ms");
/// assert_eq!(short_duration(Duration::from_millis(1240)), "1.2s");
/// assert_eq!(short_duration(Duration::from_secs(184)), "3m04s");
/// assert_eq!(short_duration(Duration::from_secs(7500)), "2h05m");
/// ```
pub fn short_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{:.1}s", d.as_secs_f64())
    } else if ms < 3_600_000 {
        format!("{}m{:02}s", ms / 60_000, ms / 1000 % 60)
    } else {
        format!("{}h{:02}m", ms / 3_600_000, ms / 60_000 % 60)
    }
}

/// The time between two stamps, if both are there and in order.
pub(crate) fn between(start: Option<f64>, end: Option<f64>) -> Option<Duration> {
    Duration::try_from_secs_f64(end? - start?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_with_offsets_and_spaces_read_as_utc() {
        assert_eq!(parse_time("1970-01-01 01:00:00", 0.0).unwrap(), 3600.0);
        assert_eq!(parse_time("1970-01-01T01:30", 0.0).unwrap(), 5400.0);
        assert_eq!(parse_time("1970-01-01T00:00:01.5Z", 0.0).unwrap(), 1.5);
        assert!(matches!(
            parse_time("1970-01-01T02:00:00+01:00", 0.0),
            Err(OpsError::BadTime { .. })
        ));
        assert_eq!(parse_time("1h 30m", 6000.0).unwrap(), 600.0);
        assert!(matches!(parse_time("", 0.0), Err(OpsError::BadTime { .. })));
        assert!(matches!(
            parse_time("2026-13-40", 0.0),
            Err(OpsError::BadTime { .. })
        ));
    }
}
