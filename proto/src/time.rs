//! UTC timestamps as text, without a calendar crate: the server's registry tokens
//! (`issued_at`, RFC 3339) and every table the CLI prints use these.

/// Days since 1970-01-01 → (year, month, day) in the proleptic Gregorian calendar
/// (H. Hinnant's `civil_from_days`).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Seconds since the epoch with `sep` between date and time: `T` gives RFC 3339
/// (`2026-12-01T11:46:16Z`), a space the form tables print.
fn format_secs(secs: i64, sep: char) -> String {
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}{sep}{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// Seconds since the epoch in RFC 3339, UTC: `2026-12-01T11:46:16Z`.
pub fn rfc3339(secs: i64) -> String {
    format_secs(secs, 'T')
}

/// Milliseconds since the epoch in RFC 3339 with milliseconds, UTC:
/// `2026-12-01T11:46:16.042Z` (ferry-server's notifications).
pub fn rfc3339_ms(ms: i64) -> String {
    let secs = format_secs(ms.div_euclid(1000), 'T');
    format!("{}.{:03}Z", secs.trim_end_matches('Z'), ms.rem_euclid(1000))
}

/// Milliseconds since the epoch as tables print them, `2026-12-01 11:46:16Z`; `-` for 0 or
/// less (never set).
pub fn table_time(ms: i64) -> String {
    if ms <= 0 {
        return "-".to_string();
    }
    format_secs(ms.div_euclid(1000), ' ')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_map_to_dates_across_leap_days_and_eras() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_778), (2026, 11, 21));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
    }

    #[test]
    fn milliseconds_are_kept_in_the_notification_form() {
        assert_eq!(rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_ms(1_795_000_000_042), "2026-11-18T11:06:40.042Z");
    }

    #[test]
    fn both_forms_print_the_same_instant() {
        assert_eq!(rfc3339(1_764_589_576), "2025-12-01T11:46:16Z");
        assert_eq!(table_time(1_764_589_576_000), "2025-12-01 11:46:16Z");
        assert_eq!(table_time(0), "-");
    }
}
