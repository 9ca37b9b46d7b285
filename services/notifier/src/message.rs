//! An alert message as styled spans, rendered either as Telegram HTML or as
//! the plain text Telegram displays for that HTML.

use crate::escape::escape_html;

/// One run of text with its style.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Span {
    Plain(String),
    Bold(String),
    Code(String),
}

/// A formatted alert. [`AlertMessage::html`] is what the Telegram sink sends,
/// and [`AlertMessage::plain_text`] is what a Telegram client displays for it
/// and what the console sink prints.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlertMessage {
    pub(crate) spans: Vec<Span>,
}

impl AlertMessage {
    /// Appends unstyled text.
    pub fn plain(&mut self, text: impl Into<String>) -> &mut Self {
        self.spans.push(Span::Plain(text.into()));
        self
    }

    /// Appends bold text.
    pub fn bold(&mut self, text: impl Into<String>) -> &mut Self {
        self.spans.push(Span::Bold(text.into()));
        self
    }

    /// Appends monospace text.
    pub fn code(&mut self, text: impl Into<String>) -> &mut Self {
        self.spans.push(Span::Code(text.into()));
        self
    }

    /// Renders the message for `parse_mode = HTML`, escaping every span.
    pub fn html(&self) -> String {
        let mut html = String::new();
        for span in &self.spans {
            match span {
                Span::Plain(text) => html.push_str(&escape_html(text)),
                Span::Bold(text) => {
                    html.push_str("<b>");
                    html.push_str(&escape_html(text));
                    html.push_str("</b>");
                }
                Span::Code(text) => {
                    html.push_str("<code>");
                    html.push_str(&escape_html(text));
                    html.push_str("</code>");
                }
            }
        }
        html
    }

    /// Renders the text without markup, as a Telegram client displays it.
    pub fn plain_text(&self) -> String {
        let mut text = String::new();
        for span in &self.spans {
            let (Span::Plain(content) | Span::Bold(content) | Span::Code(content)) = span;
            text.push_str(content);
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_wraps_and_escapes_spans() {
        let mut message = AlertMessage::default();
        message.bold("A&B").plain(" in ").code("<control>");

        assert_eq!(message.html(), "<b>A&amp;B</b> in <code>&lt;control&gt;</code>");
    }

    #[test]
    fn plain_text_drops_markup_only() {
        let mut message = AlertMessage::default();
        message.bold("A&B").plain(" in ").code("<control>");

        assert_eq!(message.plain_text(), "A&B in <control>");
    }
}
