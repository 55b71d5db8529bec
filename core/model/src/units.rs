//! Sizes, rates and dates as people type them (`500G`, `1.5TiB`, `20MB/s`, `100Mbit`,
//! `2027-06-30`), parsed in one place so that the CLI and the console accept the same text.
//! Sizes use binary multiples (1K = 1024 bytes), as storage quotas usually do.

/// Parses a size: a number with an optional unit K, M, G, T, P (optionally followed by `B`
/// or `iB`), binary multiples; `unlimited` is -1.
pub fn parse_size(text: &str) -> Result<i64, String> {
    let t = text.trim();
    if t.eq_ignore_ascii_case("unlimited") {
        return Ok(-1);
    }
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("\"{text}\" is not a size; write it like 500G, 1.5T or 800MiB"))?;
    let unit = unit.trim().to_ascii_uppercase();
    let unit = unit
        .strip_suffix("IB")
        .or_else(|| unit.strip_suffix('B'))
        .unwrap_or(&unit);
    let shift = match unit {
        "" => 0,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        "P" => 50,
        _ => {
            return Err(format!(
                "\"{text}\" has an unknown unit; use K, M, G, T or P"
            ));
        }
    };
    let bytes = value * (1u64 << shift) as f64;
    if !(0.0..9.0e18).contains(&bytes) {
        return Err(format!("\"{text}\" is out of range"));
    }
    Ok(bytes.round() as i64)
}

/// Parses a rate in bytes per second: a size per second (`20MB/s`, `512K`) or bits
/// (`100Mbit`, `1Gbit/s`, decimal multiples as networks count them); `0` or `unlimited`: none.
pub fn parse_rate(text: &str) -> Result<i64, String> {
    let t = text.trim();
    if t.eq_ignore_ascii_case("unlimited") || t == "0" {
        return Ok(0);
    }
    let lower = t.to_ascii_lowercase();
    let lower = lower.strip_suffix("/s").unwrap_or(&lower);
    if let Some(bits) = lower.strip_suffix("bit") {
        let split = bits
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(bits.len());
        let (number, unit) = bits.split_at(split);
        let value: f64 = number
            .parse()
            .map_err(|_| format!("\"{text}\" is not a rate; write it like 100Mbit or 20MB/s"))?;
        let factor = match unit.trim() {
            "" => 1.0,
            "k" => 1e3,
            "m" => 1e6,
            "g" => 1e9,
            _ => {
                return Err(format!(
                    "\"{text}\" has an unknown unit; use kbit, Mbit or Gbit"
                ));
            }
        };
        return Ok((value * factor / 8.0).round() as i64);
    }
    parse_size(lower)
}

/// Parses a date `YYYY-MM-DD` as the end of that day (UTC), in ms since the epoch: a lease
/// "until 2027-06-30" includes that day.
pub fn parse_end_of_day(text: &str) -> Result<i64, String> {
    let date = chrono::NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
        .map_err(|_| format!("\"{text}\" is not a date; write it as YYYY-MM-DD"))?;
    let end = date
        .and_hms_milli_opt(23, 59, 59, 999)
        .ok_or_else(|| format!("\"{text}\" is not a date"))?;
    Ok(end.and_utc().timestamp_millis())
}

/// Parses a duration: `45s`, `10m`, `2h` (a plain number is seconds); returns seconds.
pub fn parse_duration(text: &str) -> Result<u64, String> {
    let bad = || format!("\"{text}\" is not a duration; use for example 30s, 10m or 2h");
    let t = text.trim();
    let (number, unit) = match t.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => (&t[..i], &t[i..]),
        None => (t, "s"),
    };
    let n: u64 = number.parse().map_err(|_| bad())?;
    let factor = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        _ => return Err(bad()),
    };
    n.checked_mul(factor).ok_or_else(bad)
}

/// A byte count for people: `1.5 GiB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// A quota or size that may be unlimited (negative): `unlimited` or `1.5 GiB`.
pub fn size_or_unlimited(bytes: i64) -> String {
    if bytes < 0 {
        "unlimited".into()
    } else {
        human_bytes(bytes as u64)
    }
}

/// A date from ms since the epoch, `YYYY-MM-DD` (UTC), or `-` when there is none.
pub fn date_text(ms: Option<i64>) -> String {
    ms.and_then(chrono::DateTime::from_timestamp_millis)
        .map_or("-".into(), |d| d.format("%Y-%m-%d").to_string())
}

/// A moment from ms since the epoch in this computer's time zone, `YYYY-MM-DD HH:MM`.
pub fn date_time_text(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).map_or("-".into(), |d| {
        d.with_timezone(&chrono::Local)
            .format("%Y-%m-%d %H:%M")
            .to_string()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("45s"), Ok(45));
        assert_eq!(parse_duration("10m"), Ok(600));
        assert_eq!(parse_duration("2h"), Ok(7200));
        assert_eq!(parse_duration("90"), Ok(90));
        assert!(
            parse_duration("ten")
                .unwrap_err()
                .contains("30s, 10m or 2h")
        );
        assert!(parse_duration("5d").is_err());
    }

    #[test]
    fn sizes_rates_and_dates_parse_as_typed() {
        assert_eq!(parse_size("500G"), Ok(500 << 30));
        assert_eq!(parse_size("1.5TiB"), Ok(3 << 39));
        assert_eq!(parse_size("800 MB"), Ok(800 << 20));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("unlimited"), Ok(-1));
        assert!(parse_size("lots").unwrap_err().contains("500G"));
        assert!(parse_size("5X").unwrap_err().contains("unknown unit"));
        assert_eq!(parse_rate("100Mbit"), Ok(12_500_000));
        assert_eq!(parse_rate("20MB/s"), Ok(20 << 20));
        assert_eq!(parse_rate("0"), Ok(0));
        assert_eq!(parse_end_of_day("2027-06-30"), Ok(1_814_399_999_999));
        assert!(parse_end_of_day("30.06.2027").is_err());
        assert_eq!(human_bytes(1536 << 20), "1.5 GiB");
        assert_eq!(human_bytes(12), "12 B");
        assert_eq!(size_or_unlimited(-1), "unlimited");
        assert_eq!(date_text(Some(1_814_399_999_999)), "2027-06-30");
        assert_eq!(date_text(None), "-");
    }
}
