//! Durations written as strings in macro options: `"500ms"`, `"30s"`, `"2m"`, `"1h30m"`, `"1d"`.

/// The forms [`parse_millis`] accepts, for error messages.
pub(crate) const ACCEPTED_FORMS: &str =
    "a number and a unit (ms, s, m, h, d), largest first: \"500ms\", \"30s\", \"1m30s\", \"2h\", \"1d\"";

/// The units, largest first, with their length in milliseconds.
const UNITS: [(&str, u64); 5] = [
    ("d", 86_400_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1_000),
    ("ms", 1),
];

/// Parses a duration such as `"1m30s"` into milliseconds.
///
/// A duration is one or more `<digits><unit>` components (spaces are allowed between and
/// within components), each unit at most once and from the largest unit down. The error says what is
/// wrong, without repeating the input.
pub(crate) fn parse_millis(text: &str) -> Result<u64, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("the duration is empty".to_owned());
    }
    let mut rest = text;
    let mut total: u64 = 0;
    // Index in UNITS of the last unit seen; the next one must come after it.
    let mut last_unit: Option<usize> = None;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(format!("expected a number at `{rest}`"));
        }
        let (number, after) = rest.split_at(digits);
        if after.starts_with(['.', ',']) {
            return Err(
                "fractions are not supported: use a smaller unit, e.g. \"1500ms\" \
                        instead of \"1.5s\""
                    .to_owned(),
            );
        }
        let after = after.trim_start();
        let unit_len = after.bytes().take_while(u8::is_ascii_alphabetic).count();
        let (unit, after) = after.split_at(unit_len);
        if unit.is_empty() {
            return Err(format!("the number `{number}` has no unit"));
        }
        let index = UNITS
            .iter()
            .position(|(name, _)| *name == unit)
            .ok_or_else(|| format!("unknown unit `{unit}`"))?;
        if let Some(last) = last_unit {
            if index <= last {
                return Err(format!(
                    "the unit `{unit}` comes after `{}`: write each unit once, largest first",
                    UNITS[last].0
                ));
            }
        }
        last_unit = Some(index);
        let millis = number
            .parse::<u64>()
            .ok()
            .and_then(|n| n.checked_mul(UNITS[index].1))
            .and_then(|ms| total.checked_add(ms))
            .ok_or_else(|| "the duration is too large".to_owned())?;
        total = millis;
        rest = after.trim_start();
    }
    Ok(total)
}

/// Writes milliseconds the way [`parse_millis`] reads them: `90000` -> `"1m30s"`.
pub(crate) fn format_millis(mut millis: u64) -> String {
    if millis == 0 {
        return "0s".to_owned();
    }
    let mut out = String::new();
    for (unit, length) in UNITS {
        if millis >= length {
            out.push_str(&format!("{}{unit}", millis / length));
            millis %= length;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{format_millis, parse_millis};

    #[test]
    fn format_round_trips() {
        for text in [
            "500ms",
            "30s",
            "2m",
            "2h",
            "1d",
            "1m30s",
            "1d2h3m4s5ms",
            "0s",
        ] {
            assert_eq!(format_millis(parse_millis(text).unwrap()), text);
        }
        assert_eq!(format_millis(90_000), "1m30s");
        assert_eq!(format_millis(1_500), "1s500ms");
    }

    #[test]
    fn single_units() {
        assert_eq!(parse_millis("500ms"), Ok(500));
        assert_eq!(parse_millis("30s"), Ok(30_000));
        assert_eq!(parse_millis("2m"), Ok(120_000));
        assert_eq!(parse_millis("2h"), Ok(7_200_000));
        assert_eq!(parse_millis("1d"), Ok(86_400_000));
        assert_eq!(parse_millis("0s"), Ok(0));
    }

    #[test]
    fn combinations() {
        assert_eq!(parse_millis("1m30s"), Ok(90_000));
        assert_eq!(parse_millis("1h30m"), Ok(5_400_000));
        assert_eq!(parse_millis("1d2h3m4s5ms"), Ok(93_784_005));
        assert_eq!(parse_millis("1m 30s"), Ok(90_000));
        assert_eq!(parse_millis(" 2s "), Ok(2_000));
        assert_eq!(parse_millis("1 m 30 s"), Ok(90_000));
    }

    #[test]
    fn errors() {
        assert_eq!(parse_millis(""), Err("the duration is empty".to_owned()));
        assert_eq!(parse_millis("  "), Err("the duration is empty".to_owned()));
        assert_eq!(
            parse_millis("5"),
            Err("the number `5` has no unit".to_owned())
        );
        assert_eq!(
            parse_millis("1m30"),
            Err("the number `30` has no unit".to_owned())
        );
        assert_eq!(
            parse_millis("s"),
            Err("expected a number at `s`".to_owned())
        );
        assert!(parse_millis("1.5s")
            .unwrap_err()
            .starts_with("fractions are not supported"));
        assert_eq!(
            parse_millis("-1s"),
            Err("expected a number at `-1s`".to_owned())
        );
        assert_eq!(parse_millis("10x"), Err("unknown unit `x`".to_owned()));
        assert_eq!(parse_millis("10sec"), Err("unknown unit `sec`".to_owned()));
        assert_eq!(
            parse_millis("30s1m"),
            Err("the unit `m` comes after `s`: write each unit once, largest first".to_owned())
        );
        assert_eq!(
            parse_millis("1s1s"),
            Err("the unit `s` comes after `s`: write each unit once, largest first".to_owned())
        );
        assert_eq!(
            parse_millis("99999999999999999999s"),
            Err("the duration is too large".to_owned())
        );
        assert_eq!(
            parse_millis("999999999999999d"),
            Err("the duration is too large".to_owned())
        );
    }
}
