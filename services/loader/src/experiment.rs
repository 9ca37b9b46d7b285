//! Synthetic A/B test events on top of a replayed series. Each row also
//! yields views by random users, each followed by a like with the user's
//! own probability. Users are assigned to experiment groups by a salted
//! hash, and one group's like probability can carry an effect.

use std::hash::Hasher;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use siphasher::sip::SipHasher24;
use thiserror::Error;

use crate::{EventTemplate, SeriesRow};

/// Settings of the synthetic experiment.
#[derive(Debug, Clone, PartialEq)]
pub struct ExperimentConfig {
    /// Number of distinct users, `user-0` .. `user-<users − 1>`.
    pub users: u32,
    /// Salt of the group assignment.
    pub salt: String,
    /// Relative weights of groups `1`, `2`, …, e.g. `[50, 50]`.
    pub split: Vec<u32>,
    /// View events per CSV row.
    pub views_per_row: u32,
    /// Mean probability that a view is followed by a like, before the effect.
    pub like_probability: f64,
    /// Group (1-based) whose like probability is multiplied by `1 + effect`.
    pub effect_group: u32,
    /// Relative change of the effect group's like probability, e.g. 0.1 for
    /// +10 %; 0 for an A/A setup.
    pub effect: f64,
    /// Seed of the user and like draws, so a replay is reproducible.
    pub seed: u64,
}

#[derive(Debug, Clone, PartialEq, Error)]
pub enum ExperimentConfigError {
    #[error("--experiment-users is 0; give the number of simulated users, e.g. 2000")]
    NoUsers,
    #[error("--experiment-split `{0}` is invalid; give positive group weights separated by commas, e.g. 50,50")]
    Split(String),
    #[error("--like-probability {0} is invalid; give a probability between 0 and 1, e.g. 0.2")]
    LikeProbability(f64),
    #[error("--effect-group {group} is invalid; the split defines groups 1 to {groups}")]
    EffectGroup { group: u32, groups: usize },
    #[error("--effect {effect} makes the like probability {probability}, outside 0..1; use a smaller effect")]
    Effect { effect: f64, probability: f64 },
}

impl ExperimentConfig {
    /// Checks the settings; the message names the command-line option.
    pub fn validate(&self) -> Result<(), ExperimentConfigError> {
        if self.users == 0 {
            return Err(ExperimentConfigError::NoUsers);
        }
        if self.split.is_empty() || self.split.contains(&0) {
            let text = self.split.iter().map(u32::to_string).collect::<Vec<_>>().join(",");
            return Err(ExperimentConfigError::Split(text));
        }
        if !(0.0..=1.0).contains(&self.like_probability) {
            return Err(ExperimentConfigError::LikeProbability(self.like_probability));
        }
        if self.effect_group == 0 || self.effect_group as usize > self.split.len() {
            return Err(ExperimentConfigError::EffectGroup {
                group: self.effect_group,
                groups: self.split.len(),
            });
        }
        // A user's like probability is at most MAX_USER_FACTOR times the mean.
        let highest = self.like_probability * MAX_USER_FACTOR * (1.0 + self.effect);
        if !(0.0..=1.0).contains(&highest) {
            return Err(ExperimentConfigError::Effect {
                effect: self.effect,
                probability: highest,
            });
        }
        Ok(())
    }
}

/// Range of a user's like probability relative to the mean, so users
/// differ as in real data.
const MIN_USER_FACTOR: f64 = 0.5;
const MAX_USER_FACTOR: f64 = 1.5;

/// Group of `user_id` (1-based): `sipHash64(concat(salt, user_id))` modulo
/// the sum of the weights, mapped onto the groups' cumulative weights. In
/// ClickHouse: `sipHash64(concat(salt, user_id)) % 100 < 50` is group 1 of
/// a 50,50 split.
pub fn assign_group(user_id: &str, salt: &str, split: &[u32]) -> u32 {
    let total: u64 = split.iter().map(|&weight| u64::from(weight)).sum();
    let mut position = salted_hash(salt, user_id) % total;
    for (index, &weight) in split.iter().enumerate() {
        if position < u64::from(weight) {
            return index as u32 + 1;
        }
        position -= u64::from(weight);
    }
    split.len() as u32
}

/// SipHash-2-4 with a zero key, as ClickHouse's `sipHash64`.
fn salted_hash(salt: &str, user_id: &str) -> u64 {
    let mut hasher = SipHasher24::new_with_keys(0, 0);
    hasher.write(salt.as_bytes());
    hasher.write(user_id.as_bytes());
    hasher.finish()
}

/// Generates the experiment events of each row, in row order.
#[derive(Debug)]
pub struct ExperimentEvents {
    config: ExperimentConfig,
    rng: StdRng,
}

impl ExperimentEvents {
    pub fn new(config: ExperimentConfig) -> Self {
        let rng = StdRng::seed_from_u64(config.seed);
        ExperimentEvents { config, rng }
    }

    /// Renders the row's views and likes as event JSON objects, stamped with
    /// the row's time. Event ids are `<prefix>-<row>-view-<n>` and
    /// `<prefix>-<row>-like-<n>`.
    pub fn row_events(&mut self, template: &EventTemplate, row_index: usize, row: &SeriesRow) -> Vec<String> {
        let time = row.timestamp.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let mut events = Vec::new();
        for view in 0..self.config.views_per_row {
            // Squaring a uniform draw makes low-numbered users more active,
            // so views per user are skewed as in product data.
            let draw: f64 = self.rng.random();
            let index = ((draw * draw) * f64::from(self.config.users)) as u32;
            let user_id = format!("user-{}", index.min(self.config.users - 1));
            let group = assign_group(&user_id, &self.config.salt, &self.config.split);
            let like = self.rng.random::<f64>() < self.like_probability(&user_id, group);

            let event = |kind: &str| {
                json!({
                    "event_time": time,
                    "event": kind,
                    "user_id": user_id,
                    "event_id": format!("{}-{row_index}-{kind}-{view}", template.event_id_prefix),
                    "exp_group": group.to_string(),
                })
                .to_string()
            };
            events.push(event("view"));
            if like {
                events.push(event("like"));
            }
        }
        events
    }

    /// Computes the user's own like probability: the mean times a factor
    /// between 0.5 and 1.5 from a hash of the id, times `1 + effect` in the
    /// effect group.
    fn like_probability(&self, user_id: &str, group: u32) -> f64 {
        let spread = (salted_hash("like-probability", user_id) % 1001) as f64 / 1000.0;
        let factor = MIN_USER_FACTOR + (MAX_USER_FACTOR - MIN_USER_FACTOR) * spread;
        let effect = if group == self.config.effect_group {
            1.0 + self.config.effect
        } else {
            1.0
        };
        self.config.like_probability * factor * effect
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
    use seismo_events::Event;

    use super::*;

    fn config() -> ExperimentConfig {
        ExperimentConfig {
            users: 500,
            salt: "exp-1".to_string(),
            split: vec![50, 50],
            views_per_row: 20,
            like_probability: 0.2,
            effect_group: 2,
            effect: 0.5,
            seed: 7,
        }
    }

    fn template() -> EventTemplate {
        EventTemplate {
            event: "taxi_trips".to_string(),
            user_id: "nab-loader".to_string(),
            event_id_prefix: "nyc_taxi".to_string(),
        }
    }

    fn row() -> SeriesRow {
        SeriesRow {
            timestamp: Utc.with_ymd_and_hms(2014, 7, 1, 0, 30, 0).unwrap(),
            value: 8127.0,
        }
    }

    #[test]
    fn split_follows_weights() {
        let mut counts = [0u32; 3];
        for user in 0..30_000 {
            counts[assign_group(&format!("user-{user}"), "salt", &[20, 30, 50]) as usize - 1] += 1;
        }

        assert!((5_600..=6_400).contains(&counts[0]), "{counts:?}");
        assert!((8_500..=9_500).contains(&counts[1]), "{counts:?}");
        assert!((14_400..=15_600).contains(&counts[2]), "{counts:?}");
    }

    #[test]
    fn assignment_depends_on_salt() {
        let moved = (0..1000)
            .filter(|user| {
                let id = format!("user-{user}");
                assign_group(&id, "a", &[50, 50]) != assign_group(&id, "b", &[50, 50])
            })
            .count();

        assert!((400..=600).contains(&moved), "{moved} of 1000 users changed group");
    }

    #[test]
    fn events_parse_and_carry_group() {
        let mut events = ExperimentEvents::new(config());
        let limits = seismo_events::ParseLimits {
            max_future: None,
            ..Default::default()
        };

        let texts = events.row_events(&template(), 3, &row());
        let parsed: Vec<Event> = texts
            .iter()
            .map(|text| Event::parse_with(text.as_bytes(), &limits, Utc::now()).unwrap())
            .collect();

        assert_eq!(parsed.iter().filter(|event| event.event == "view").count(), 20);
        for event in &parsed {
            let group = assign_group(&event.user_id, "exp-1", &[50, 50]).to_string();
            assert_eq!(event.exp_group.as_deref(), Some(group.as_str()));
            assert_eq!(event.event_time, row().timestamp);
        }
        assert_eq!(parsed[0].event_id.as_deref(), Some("nyc_taxi-3-view-0"));
    }

    #[test]
    fn effect_raises_likes_of_one_group() {
        let mut events = ExperimentEvents::new(ExperimentConfig {
            views_per_row: 1000,
            ..config()
        });
        let mut views = [0u32; 2];
        let mut likes = [0u32; 2];
        for index in 0..50 {
            for text in events.row_events(&template(), index, &row()) {
                let event: serde_json::Value = serde_json::from_str(&text).unwrap();
                let group: usize = event["exp_group"].as_str().unwrap().parse().unwrap();
                match event["event"].as_str().unwrap() {
                    "view" => views[group - 1] += 1,
                    _ => likes[group - 1] += 1,
                }
            }
        }

        let ctr = [
            f64::from(likes[0]) / f64::from(views[0]),
            f64::from(likes[1]) / f64::from(views[1]),
        ];
        let lift = ctr[1] / ctr[0] - 1.0;
        assert!((0.4..=0.6).contains(&lift), "CTR {ctr:?}, lift {lift}");
    }

    #[test]
    fn same_seed_same_events() {
        let first = ExperimentEvents::new(config()).row_events(&template(), 0, &row());
        let second = ExperimentEvents::new(config()).row_events(&template(), 0, &row());

        assert_eq!(first, second);
    }

    #[test]
    fn invalid_settings_name_option() {
        let cases = [
            (ExperimentConfig { users: 0, ..config() }, "--experiment-users is 0"),
            (
                ExperimentConfig {
                    split: vec![50, 0],
                    ..config()
                },
                "--experiment-split `50,0` is invalid",
            ),
            (
                ExperimentConfig {
                    like_probability: 1.5,
                    ..config()
                },
                "--like-probability 1.5",
            ),
            (
                ExperimentConfig {
                    effect_group: 3,
                    ..config()
                },
                "--effect-group 3 is invalid",
            ),
            (
                ExperimentConfig {
                    effect: 3.0,
                    ..config()
                },
                "--effect 3 makes",
            ),
        ];

        for (config, expected) in cases {
            let message = config.validate().unwrap_err().to_string();
            assert!(message.contains(expected), "{message:?} should contain {expected:?}");
        }
        assert_eq!(config().validate(), Ok(()));
    }
}
