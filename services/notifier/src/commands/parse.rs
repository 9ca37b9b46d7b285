//! Parses the text of a bot command into a [`Command`].

use chrono::TimeDelta;

use crate::ab_report::arguments::{AbArguments, parse_ab_arguments};
use crate::silence::duration::parse_duration;
use crate::silence::selector::SeriesSelector;

/// A bot command the notifier understands.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// `/mute <selector> <duration>`: silence series for a time.
    Mute {
        selector: SeriesSelector,
        duration: TimeDelta,
    },
    /// `/unmute <selector|id>`.
    Unmute(UnmuteTarget),
    /// `/silences`: list the silences in force.
    Silences,
    /// `/status`: firing episodes, last alert, silences.
    Status,
    /// `/report`: send the daily report now.
    Report,
    /// `/forecast`: send the forecast report now.
    Forecast,
    /// `/ab <control> <treatment> <from> <to> [metric]`: analyse an A/B test.
    Ab(AbArguments),
    /// `/help` or `/start`.
    Help,
}

/// Target of `/unmute`.
#[derive(Debug, Clone, PartialEq)]
pub enum UnmuteTarget {
    /// A silence by the id `/silences` shows, written `17` or `#17`.
    Id(i64),
    /// Every silence in force with exactly this selector.
    Selector(SeriesSelector),
}

/// Parses a message text. Returns `None` for text that is not a command,
/// and an error text to send back for a known command with bad arguments or
/// an unknown command.
pub fn parse_command(text: &str) -> Option<Result<Command, String>> {
    let text = text.trim();
    let rest = text.strip_prefix('/')?;
    let mut words = rest.split_whitespace();
    let head = words.next()?;
    // In groups Telegram appends the bot's name: `/mute@seismo_bot`.
    let name = head.split('@').next().unwrap_or(head).to_ascii_lowercase();
    let arguments: Vec<&str> = words.collect();

    let parsed = match name.as_str() {
        "mute" => parse_mute(&arguments),
        "unmute" => parse_unmute(&arguments),
        "silences" => no_arguments(Command::Silences, &arguments),
        "status" => no_arguments(Command::Status, &arguments),
        "report" => no_arguments(Command::Report, &arguments),
        "forecast" => no_arguments(Command::Forecast, &arguments),
        "ab" => parse_ab_arguments(&arguments).map(Command::Ab),
        "help" | "start" => Ok(Command::Help),
        other => Err(format!("Unknown command /{other}. Send /help for the list.")),
    };
    Some(parsed)
}

fn parse_mute(arguments: &[&str]) -> Result<Command, String> {
    let [selector, duration] = arguments else {
        return Err("Usage: /mute <metric>[{dimension=value}] <duration>, e.g. /mute views 2h".to_string());
    };
    let selector = SeriesSelector::parse(selector).map_err(|error| error.to_string())?;
    let duration = parse_duration(duration)?;
    Ok(Command::Mute { selector, duration })
}

fn parse_unmute(arguments: &[&str]) -> Result<Command, String> {
    let [target] = arguments else {
        return Err("Usage: /unmute <metric> or /unmute <silence id>, e.g. /unmute views or /unmute 3".to_string());
    };
    let id_text = target.strip_prefix('#').unwrap_or(target);
    if let Ok(id) = id_text.parse::<i64>() {
        return Ok(Command::Unmute(UnmuteTarget::Id(id)));
    }
    SeriesSelector::parse(target)
        .map(|selector| Command::Unmute(UnmuteTarget::Selector(selector)))
        .map_err(|error| error.to_string())
}

fn no_arguments(command: Command, arguments: &[&str]) -> Result<Command, String> {
    if arguments.is_empty() {
        Ok(command)
    } else {
        Err("This command takes no arguments.".to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mute_parses_selector_and_duration() {
        let command = parse_command("/mute@seismo_bot views{os=iOS} 1h30m").unwrap().unwrap();

        assert_eq!(
            command,
            Command::Mute {
                selector: SeriesSelector::parse("views{os=iOS}").unwrap(),
                duration: TimeDelta::minutes(90),
            }
        );
    }

    #[test]
    fn unmute_takes_id_or_selector() {
        assert_eq!(
            parse_command("/unmute #4"),
            Some(Ok(Command::Unmute(UnmuteTarget::Id(4))))
        );
        assert_eq!(
            parse_command("/unmute 4"),
            Some(Ok(Command::Unmute(UnmuteTarget::Id(4))))
        );
        assert_eq!(
            parse_command("/unmute likes"),
            Some(Ok(Command::Unmute(UnmuteTarget::Selector(
                SeriesSelector::parse("likes").unwrap()
            ))))
        );
    }

    #[test]
    fn plain_text_is_not_a_command() {
        assert_eq!(parse_command("views look odd"), None);
        assert_eq!(parse_command(""), None);
    }

    #[test]
    fn bad_arguments_return_usage() {
        for text in [
            "/mute views",
            "/mute views soon",
            "/unmute",
            "/status now",
            "/frobnicate",
            "/ab 1 2 2026-11-08 2026-11-01",
        ] {
            assert!(matches!(parse_command(text), Some(Err(_))), "{text:?}");
        }
        assert_eq!(parse_command("/HELP"), Some(Ok(Command::Help)));
    }

    #[test]
    fn ab_parses_groups_and_days() {
        let Some(Ok(Command::Ab(arguments))) = parse_command("/ab@seismo_bot 1 2 2026-11-01 2026-11-08 likes") else {
            panic!("/ab did not parse");
        };

        assert_eq!(arguments.control, "1");
        assert_eq!(arguments.treatment, "2");
        assert_eq!(arguments.metric, seismo_experiments::analysis::Metric::Likes);
    }
}
