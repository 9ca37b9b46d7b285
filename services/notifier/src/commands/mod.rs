//! Bot commands (`/mute`, `/unmute`, `/silences`, `/status`, `/report`,
//! `/help`) and the inline buttons under alerts, accepted only from
//! allow-listed chats and users.

pub mod access;
pub mod acknowledgements;
pub mod bot;
pub mod buttons;
pub mod parse;
pub mod replies;
pub mod setup;
pub mod status_view;
