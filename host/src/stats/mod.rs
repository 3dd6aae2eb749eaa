//! The statistics reports (seed 4.4) as ECharts option objects, in exactly the
//! seed's shapes: `title`, `tooltip`, `legend`, axes for the line chart, and
//! `series` of type `line` or `pie`. The counting is done by the database
//! (`db::stats`); this module only arranges the counts.

use std::collections::BTreeMap;

use chrono::{Duration, NaiveDate};
use serde_json::{Value, json};

use crate::db::stats::{DayCount, ValueCount};
use crate::state::JobStatus;

/// Default and largest number of daily buckets of the success rate.
pub const DEFAULT_DAYS: u32 = 30;
pub const MAX_DAYS: u32 = 366;

/// A percentage with two decimals.
fn percent(part: i64, whole: i64) -> Value {
    if whole == 0 {
        return Value::Null;
    }
    #[expect(clippy::cast_precision_loss, reason = "job counts are far below 2^52")]
    let rate = (1.0 - part as f64 / whole as f64) * 100.0;
    json!((rate * 100.0).round() / 100.0)
}

/// Success rate per day, for the `days` days ending on `today` (UTC):
/// `rate = (1 - failed / ended) * 100`, where `ended` counts the jobs created
/// that day that have finished or failed (running ones are not counted yet).
/// With `exclude_retstat`, a second series does not count failures with those
/// stats (a cancel, say) as failures: `(1 - (failed - excluded) / ended) * 100`.
/// A day without ended jobs has `null` (ECharts leaves a gap).
pub fn success_rate(counts: &[DayCount], today: NaiveDate, days: u32, exclude: &[String]) -> Value {
    // day -> (ended, failed, failed with an excluded stat)
    let mut per_day: BTreeMap<&str, (i64, i64, i64)> = BTreeMap::new();
    for row in counts {
        let entry = per_day.entry(row.day.as_str()).or_default();
        entry.0 += row.jobs;
        if row.job_status == JobStatus::Failed {
            entry.1 += row.jobs;
            if exclude.contains(&row.ret_stat) {
                entry.2 += row.jobs;
            }
        }
    }
    let first = today - Duration::days(i64::from(days.max(1)) - 1);
    let labels: Vec<String> = (0..days.max(1)).map(|n| (first + Duration::days(i64::from(n))).to_string()).collect();
    let bucket = |label: &String| per_day.get(label.as_str()).copied().unwrap_or_default();
    let rates: Vec<Value> = labels
        .iter()
        .map(|label| {
            let (ended, failed, _) = bucket(label);
            percent(failed, ended)
        })
        .collect();
    let mut series = vec![json!({"data": rates, "type": "line", "name": "rate", "smooth": true})];
    if !exclude.is_empty() {
        let rates: Vec<Value> = labels
            .iter()
            .map(|label| {
                let (ended, failed, excluded) = bucket(label);
                percent(failed - excluded, ended)
            })
            .collect();
        let name = format!("rate excluding {}", exclude.join(","));
        series.push(json!({"data": rates, "type": "line", "name": name, "smooth": true}));
    }
    json!({
        "title": {"text": "success rate"},
        "series": series,
        "yAxis": {},
        "tooltip": {},
        "xAxis": {"data": labels},
        "legend": {},
    })
}

fn pie(title: &str, name: &str, data: Vec<Value>) -> Value {
    json!({
        "series": [{"data": data, "type": "pie", "name": name}],
        "legend": {},
        "tooltip": {"trigger": "item", "formatter": "{a} {b}:{c} ({d}%)"},
        "title": {"text": title},
    })
}

/// Jobs per value of the tag `name`, in the order of `values` (zeros kept).
/// `counts` are per distinct `job_tags` text; a job counts once per value.
pub fn jobtag_ratio(counts: &[ValueCount], name: &str, values: &[String]) -> Value {
    let mut per_value: BTreeMap<&str, i64> = BTreeMap::new();
    for row in counts {
        let mut seen: Vec<&str> = Vec::new();
        for tag in row.value.split(',') {
            if let Some((key, value)) = tag.split_once('=')
                && key.trim() == name
                && !seen.contains(&value.trim())
            {
                seen.push(value.trim());
                *per_value.entry(value.trim()).or_default() += row.jobs;
            }
        }
    }
    let data = values
        .iter()
        .map(|value| json!({"name": value, "value": per_value.get(value.as_str()).copied().unwrap_or(0)}))
        .collect();
    pie(&format!("{name} ratio"), name, data)
}

/// Ended jobs per `ret_stat`, by stat name (byte order, the same on every backend).
pub fn retstat_ratio(counts: &[ValueCount]) -> Value {
    let mut counts = counts.to_vec();
    counts.sort_by(|a, b| a.value.cmp(&b.value));
    let data = counts.iter().map(|row| json!({"name": row.value, "value": row.jobs})).collect();
    pie("retstat ratio", "retstat", data)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(day: &str, job_status: JobStatus, stat: &str, jobs: i64) -> DayCount {
        DayCount { day: day.into(), job_status, ret_stat: stat.into(), jobs }
    }

    #[test]
    fn success_rate_is_one_minus_failed_over_ended_per_day() {
        let counts = [
            day("2026-11-24", JobStatus::Finished, "OK", 3),
            day("2026-11-24", JobStatus::Failed, "ERR_JOB_CANCELLED", 1),
            day("2026-11-25", JobStatus::Finished, "OK", 1),
            day("2026-11-25", JobStatus::Failed, "ERR_X", 1),
        ];
        let today = NaiveDate::from_ymd_opt(2026, 11, 25).unwrap();
        let chart = success_rate(&counts, today, 3, &["ERR_JOB_CANCELLED".into()]);
        assert_eq!(chart["xAxis"]["data"], json!(["2026-11-23", "2026-11-24", "2026-11-25"]));
        assert_eq!(chart["series"][0]["data"], json!([null, 75.0, 50.0]));
        assert_eq!(chart["series"][1]["data"], json!([null, 100.0, 50.0]));
    }

    #[test]
    fn tag_ratio_keeps_the_asked_order_and_zeros() {
        let counts = [
            ValueCount { value: "region=bj,flag=redis".into(), jobs: 4 },
            ValueCount { value: "region=nj".into(), jobs: 2 },
            ValueCount { value: String::new(), jobs: 7 },
        ];
        let chart = jobtag_ratio(&counts, "region", &["gz".into(), "bj".into(), "nj".into()]);
        let data = &chart["series"][0]["data"];
        assert_eq!(data, &json!([{"name": "gz", "value": 0}, {"name": "bj", "value": 4}, {"name": "nj", "value": 2}]));
    }
}
