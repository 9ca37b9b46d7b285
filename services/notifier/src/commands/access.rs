//! The allow-list of chats and users that may use the bot's commands and
//! buttons.

use std::collections::BTreeSet;

/// Commands are accepted from a chat on `chats`, and, when `users` is not
/// empty, only from a user on `users`. An empty `chats` accepts nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowList {
    pub chats: BTreeSet<i64>,
    pub users: BTreeSet<u64>,
}

impl AllowList {
    /// Returns whether a command from `user_id` in `chat_id` is accepted.
    /// A message without a sender (an anonymous group admin, a channel post)
    /// is accepted only while `users` is empty.
    pub fn allows(&self, chat_id: i64, user_id: Option<u64>) -> bool {
        if !self.chats.contains(&chat_id) {
            return false;
        }
        match user_id {
            _ if self.users.is_empty() => true,
            Some(user_id) => self.users.contains(&user_id),
            None => false,
        }
    }
}

/// Parses a comma-separated list of integer ids; blank entries are skipped.
pub fn parse_id_list<T: std::str::FromStr + Ord>(list: &str, setting: &str) -> Result<BTreeSet<T>, String> {
    list.split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(|entry| {
            entry
                .parse::<T>()
                .map_err(|_| format!("invalid id `{entry}` in {setting}: expected a comma-separated list of integers"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_list_requires_chat_and_listed_user() {
        let list = AllowList {
            chats: parse_id_list("-100, 5", "chats").unwrap(),
            users: parse_id_list("7", "users").unwrap(),
        };

        assert!(list.allows(-100, Some(7)));
        assert!(!list.allows(-100, Some(8)));
        assert!(!list.allows(-100, None));
        assert!(!list.allows(-200, Some(7)));
    }

    #[test]
    fn empty_user_list_accepts_anyone_in_listed_chats() {
        let list = AllowList {
            chats: parse_id_list("-100", "chats").unwrap(),
            users: BTreeSet::new(),
        };

        assert!(list.allows(-100, Some(9)));
        assert!(list.allows(-100, None));
        assert!(!AllowList::default().allows(-100, Some(9)));
    }

    #[test]
    fn id_list_rejects_non_integers() {
        assert!(parse_id_list::<i64>("1, x", "chats").is_err());
        assert_eq!(parse_id_list::<i64>(" , ", "chats").unwrap(), BTreeSet::new());
    }
}
