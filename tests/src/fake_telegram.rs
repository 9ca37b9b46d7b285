//! A fake Telegram Bot API on 127.0.0.1 that records every request and can
//! respond with scripted failures (429 with `retry_after`, 5xx, 400).
//!
//! Routing follows the real API: `/bot<token>/<method>`, with the method name
//! matched case-insensitively because teloxide sends `SendMessage`. Messages
//! with `parse_mode = HTML` are parsed the way Telegram does, and text that
//! Telegram would reject ("can't parse entities") gets a 400, as does a text
//! longer than Telegram's 4096 UTF-16 code units after entity parsing.
//!
//! For bot commands it also serves `getUpdates` from a queue that tests fill
//! with [`FakeTelegram::push_text_message`] and
//! [`FakeTelegram::push_button_press`], accepts `answerCallbackQuery` and
//! `editMessageReplyMarkup`, and accepts multipart `sendPhoto`, recording
//! each request's body and photo bytes.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequest, Multipart, Request, State};
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

/// Tags Telegram accepts in `HTML` parse mode (Bot API, "HTML style").
const SUPPORTED_TAGS: [&str; 16] = [
    "b",
    "strong",
    "i",
    "em",
    "u",
    "ins",
    "s",
    "strike",
    "del",
    "span",
    "tg-spoiler",
    "a",
    "code",
    "pre",
    "blockquote",
    "tg-emoji",
];

/// Maximum visible length of a message text, in UTF-16 code units (Bot API,
/// sendMessage: "1-4096 characters after entities parsing").
pub const MAX_TEXT_UTF16: usize = 4096;

/// A scripted response to the next `sendMessage` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// 200 with the sent message.
    Ok,
    /// 429 with `parameters.retry_after` in seconds.
    RetryAfter(u32),
    /// The given 5xx status with a Bot API error body.
    ServerError(u16),
    /// 400 with the given description, which should start with "Bad Request: ".
    BadRequest(String),
}

/// One request as the fake received it.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    /// Arrival time.
    pub received_at: Instant,
    /// Method name in lower case, such as `sendmessage`.
    pub method: String,
    /// The token from the `/bot<token>/` path segment.
    pub token: String,
    pub chat_id: Value,
    pub text: Option<String>,
    pub parse_mode: Option<String>,
    /// HTTP status of the fake's response.
    pub status: u16,
    /// The JSON body, or for a multipart request an object of its text
    /// fields; `Null` when neither parses.
    pub body: Value,
    /// The uploaded file of a multipart request, such as `sendPhoto`'s photo.
    pub photo: Option<Vec<u8>>,
    /// `message_id` of the message the fake created, for `sendMessage` and
    /// `sendPhoto` requests it accepted.
    pub message_id: Option<i64>,
}

impl RecordedRequest {
    /// Returns whether this request delivered a message.
    pub fn delivered(&self) -> bool {
        self.method == "sendmessage" && self.status == 200
    }
}

#[derive(Default)]
struct FakeState {
    requests: Vec<RecordedRequest>,
    replies: VecDeque<Reply>,
    next_message_id: i64,
    /// Updates not yet confirmed by a `getUpdates` offset, oldest first.
    updates: VecDeque<Value>,
    next_update_id: i64,
}

/// Maximum time a `getUpdates` request waits for an update, whatever its
/// `timeout`, so that a long poll does not hold up a test's shutdown.
const MAX_LONG_POLL: Duration = Duration::from_millis(500);

/// A running fake Bot API; it stops when dropped.
pub struct FakeTelegram {
    address: SocketAddr,
    state: Arc<Mutex<FakeState>>,
    shutdown: CancellationToken,
}

impl FakeTelegram {
    /// Starts the fake on an ephemeral port of 127.0.0.1.
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding an ephemeral port on 127.0.0.1 succeeds");
        let address = listener.local_addr().expect("a bound listener has an address");
        let state = Arc::new(Mutex::new(FakeState::default()));
        let shutdown = CancellationToken::new();

        let app = Router::new().fallback(handle).with_state(Arc::clone(&state));
        let stop = shutdown.clone();
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await
                .expect("the fake Telegram server runs until shut down");
        });

        Self {
            address,
            state,
            shutdown,
        }
    }

    /// Base URL to pass as the Bot API URL, such as `http://127.0.0.1:PORT/`.
    pub fn api_url(&self) -> String {
        format!("http://{}/", self.address)
    }

    /// Queues responses for the next `sendMessage` requests, in order. Requests
    /// past the queue get [`Reply::Ok`].
    pub fn push_replies(&self, replies: impl IntoIterator<Item = Reply>) {
        self.lock().replies.extend(replies);
    }

    /// Returns every request received so far.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.lock().requests.clone()
    }

    /// Returns the requests that delivered a message.
    pub fn delivered(&self) -> Vec<RecordedRequest> {
        self.requests().into_iter().filter(RecordedRequest::delivered).collect()
    }

    /// Waits until `count` messages were delivered and returns them. Panics
    /// with the requests seen so far after `timeout`.
    pub async fn wait_for_delivered(&self, count: usize, timeout: Duration) -> Vec<RecordedRequest> {
        let deadline = Instant::now() + timeout;
        loop {
            let delivered = self.delivered();
            if delivered.len() >= count {
                return delivered;
            }
            if Instant::now() >= deadline {
                panic!(
                    "expected {count} delivered messages within {timeout:?}, got {}; requests: {:#?}",
                    delivered.len(),
                    self.requests()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Queues a text message from user `user_id` in chat `chat_id` for
    /// `getUpdates`; returns its update id.
    pub fn push_text_message(&self, chat_id: i64, user_id: u64, text: &str) -> i64 {
        let mut state = self.lock();
        state.next_message_id += 1;
        let message = json!({
            "message_id": state.next_message_id,
            "date": 1_714_557_600,
            "chat": chat_json(&json!(chat_id)),
            "from": user_json(user_id),
            "text": text,
        });
        push_update(&mut state, "message", message)
    }

    /// Queues a press of an inline button with `data` under message
    /// `message_id` of chat `chat_id` for `getUpdates`; returns its update id.
    pub fn push_button_press(&self, chat_id: i64, user_id: u64, message_id: i64, data: &str) -> i64 {
        let mut state = self.lock();
        let query_id = format!("query-{}", state.next_update_id + 1);
        let query = json!({
            "id": query_id,
            "from": user_json(user_id),
            "message": {
                "message_id": message_id,
                "date": 1_714_557_600,
                "chat": chat_json(&json!(chat_id)),
                "text": "alert",
            },
            "chat_instance": "1",
            "data": data,
        });
        push_update(&mut state, "callback_query", query)
    }

    /// Returns the queued updates that no `getUpdates` offset has confirmed.
    pub fn pending_updates(&self) -> usize {
        self.lock().updates.len()
    }

    /// Returns the requests of one method, given in lower case such as
    /// `answercallbackquery`.
    pub fn requests_of(&self, method: &str) -> Vec<RecordedRequest> {
        self.requests()
            .into_iter()
            .filter(|request| request.method == method)
            .collect()
    }

    /// Waits until `count` requests of `method` (lower case) were received
    /// and returns them. Panics with the requests seen so far after `timeout`.
    pub async fn wait_for_requests(&self, method: &str, count: usize, timeout: Duration) -> Vec<RecordedRequest> {
        let deadline = Instant::now() + timeout;
        loop {
            let matching = self.requests_of(method);
            if matching.len() >= count {
                return matching;
            }
            if Instant::now() >= deadline {
                panic!(
                    "expected {count} {method} requests within {timeout:?}, got {}; requests: {:#?}",
                    matching.len(),
                    self.requests()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FakeState> {
        self.state
            .lock()
            .expect("no test thread panicked while holding the fake's state")
    }
}

impl Drop for FakeTelegram {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Parses a message text the way Telegram parses `parse_mode = HTML` and
/// returns the text a client displays. Fails, like Telegram, on an unknown
/// tag, an unclosed or unmatched tag, a bare `<`, `>` or `&`, or an unknown
/// named entity. Only `&lt;`, `&gt;`, `&amp;`, `&quot;` and numeric entities
/// are decoded, as in the Bot API.
pub fn parse_telegram_html(html: &str) -> Result<String, String> {
    let mut visible = String::with_capacity(html.len());
    let mut open_tags: Vec<String> = Vec::new();
    let mut rest = html;

    while let Some(character) = rest.chars().next() {
        let offset = html.len() - rest.len();
        match character {
            '<' => {
                let end = rest
                    .find('>')
                    .ok_or_else(|| format!("Unclosed start tag at byte offset {offset}"))?;
                let tag = &rest[1..end];
                rest = &rest[end + 1..];

                if let Some(name) = tag.strip_prefix('/') {
                    let name = name.trim().to_ascii_lowercase();
                    if open_tags.pop().as_deref() != Some(name.as_str()) {
                        return Err(format!(
                            "Unmatched end tag at byte offset {offset}, expected \"</{name}>\""
                        ));
                    }
                } else {
                    let name = tag.split_whitespace().next().unwrap_or("").to_ascii_lowercase();
                    if !SUPPORTED_TAGS.contains(&name.as_str()) {
                        return Err(format!("Unsupported start tag \"{name}\" at byte offset {offset}"));
                    }
                    open_tags.push(name);
                }
            }
            '&' => {
                let end = rest
                    .find(';')
                    .filter(|end| *end <= 10)
                    .ok_or_else(|| format!("Unescaped \"&\" at byte offset {offset}"))?;
                let entity = &rest[1..end];
                let decoded = decode_entity(entity)
                    .ok_or_else(|| format!("Unsupported entity \"&{entity};\" at byte offset {offset}"))?;
                visible.push(decoded);
                rest = &rest[end + 1..];
            }
            '>' => return Err(format!("Unescaped \">\" at byte offset {offset}")),
            other => {
                visible.push(other);
                rest = &rest[other.len_utf8()..];
            }
        }
    }

    match open_tags.last() {
        Some(tag) => Err(format!("Can't find end tag corresponding to start tag \"{tag}\"")),
        None => Ok(visible),
    }
}

fn decode_entity(entity: &str) -> Option<char> {
    match entity {
        "lt" => Some('<'),
        "gt" => Some('>'),
        "amp" => Some('&'),
        "quot" => Some('"'),
        _ => {
            let number = entity.strip_prefix('#')?;
            let code = match number.strip_prefix(['x', 'X']) {
                Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                None => number.parse().ok()?,
            };
            char::from_u32(code)
        }
    }
}

async fn handle(State(state): State<Arc<Mutex<FakeState>>>, uri: Uri, request: Request) -> Response {
    let Some((token, method)) = split_path(uri.path()) else {
        return api_error(StatusCode::NOT_FOUND, "Not Found", None);
    };
    let (body, photo) = read_body(request).await;
    if method == "getupdates" {
        wait_for_updates(&state, &body).await;
    }
    let text = body.get("text").and_then(Value::as_str).map(str::to_string);
    let parse_mode = body.get("parse_mode").and_then(Value::as_str).map(str::to_string);
    let chat_id = body.get("chat_id").cloned().unwrap_or(Value::Null);

    let mut state = state
        .lock()
        .expect("no handler panicked while holding the fake's state");
    let mut message_id = None;
    let response = if method == "sendmessage" {
        let reply = state.replies.pop_front().unwrap_or(Reply::Ok);
        state.next_message_id += 1;
        message_id = Some(state.next_message_id);
        respond_to_send_message(
            reply,
            state.next_message_id,
            &chat_id,
            text.as_deref(),
            parse_mode.as_deref(),
        )
    } else if method == "sendphoto" {
        state.next_message_id += 1;
        message_id = Some(state.next_message_id);
        respond_to_send_photo(state.next_message_id, &chat_id, photo.as_deref())
    } else if method == "getupdates" {
        respond_to_get_updates(&mut state, &body)
    } else if method == "answercallbackquery" || method == "editmessagereplymarkup" {
        ok_result(json!(true))
    } else {
        api_error(StatusCode::NOT_FOUND, "Not Found: method not found", None)
    };

    state.requests.push(RecordedRequest {
        received_at: Instant::now(),
        method,
        token,
        chat_id,
        text,
        parse_mode,
        status: response.status().as_u16(),
        message_id: message_id.filter(|_| response.status() == StatusCode::OK),
        body,
        photo,
    });
    response
}

/// Reads a JSON body, or the text fields and the file of a multipart body.
async fn read_body(request: Request) -> (Value, Option<Vec<u8>>) {
    let is_multipart = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("multipart/form-data"));
    if !is_multipart {
        let bytes = Bytes::from_request(request, &()).await.unwrap_or_default();
        return (serde_json::from_slice(&bytes).unwrap_or(Value::Null), None);
    }

    let Ok(mut multipart) = Multipart::from_request(request, &()).await else {
        return (Value::Null, None);
    };
    let mut fields = serde_json::Map::new();
    let mut file = None;
    while let Ok(Some(field)) = multipart.next_field().await {
        let name = field.name().unwrap_or_default().to_string();
        let is_file = field.file_name().is_some();
        let Ok(bytes) = field.bytes().await else {
            break;
        };
        if is_file {
            file = Some(bytes.to_vec());
        } else {
            let text = String::from_utf8_lossy(&bytes).into_owned();
            // teloxide sends `chat_id` as a JSON number in its text form.
            let value = serde_json::from_str::<Value>(&text)
                .ok()
                .filter(Value::is_number)
                .unwrap_or(Value::String(text));
            fields.insert(name, value);
        }
    }
    (Value::Object(fields), file)
}

/// Holds a `getUpdates` request until an update is queued, its `timeout`
/// passes or [`MAX_LONG_POLL`] passes, like Telegram's long polling.
async fn wait_for_updates(state: &Mutex<FakeState>, body: &Value) {
    let timeout = body.get("timeout").and_then(Value::as_u64).unwrap_or(0);
    let deadline = Instant::now() + Duration::from_secs(timeout).min(MAX_LONG_POLL);
    let offset = body.get("offset").and_then(Value::as_i64).unwrap_or(0);
    loop {
        let ready = state
            .lock()
            .expect("no handler panicked while holding the fake's state")
            .updates
            .iter()
            .any(|update| update["update_id"].as_i64().unwrap_or(0) >= offset);
        if ready || Instant::now() >= deadline {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Drops the updates an `offset` confirms and returns the rest.
fn respond_to_get_updates(state: &mut FakeState, body: &Value) -> Response {
    let offset = body.get("offset").and_then(Value::as_i64).unwrap_or(0);
    state
        .updates
        .retain(|update| update["update_id"].as_i64().unwrap_or(0) >= offset);
    ok_result(Value::Array(state.updates.iter().cloned().collect()))
}

fn push_update(state: &mut FakeState, kind: &str, payload: Value) -> i64 {
    state.next_update_id += 1;
    let update_id = state.next_update_id;
    let mut update = json!({ "update_id": update_id });
    update[kind] = payload;
    state.updates.push_back(update);
    update_id
}

fn user_json(user_id: u64) -> Value {
    json!({
        "id": user_id,
        "is_bot": false,
        "first_name": format!("User {user_id}"),
        "username": format!("user{user_id}"),
    })
}

fn respond_to_send_photo(message_id: i64, chat_id: &Value, photo: Option<&[u8]>) -> Response {
    if photo.is_none_or(<[u8]>::is_empty) {
        return api_error(
            StatusCode::BAD_REQUEST,
            "Bad Request: there is no photo in the request",
            None,
        );
    }
    ok_result(json!({
        "message_id": message_id,
        "date": 1_714_557_600,
        "chat": chat_json(chat_id),
        "photo": [{
            "file_id": format!("photo-{message_id}"),
            "file_unique_id": format!("unique-{message_id}"),
            "width": 800,
            "height": 400,
        }],
    }))
}

fn ok_result(result: Value) -> Response {
    (StatusCode::OK, axum::Json(json!({ "ok": true, "result": result }))).into_response()
}

/// Splits `/bot<token>/<method>` into the token and the lower-case method.
fn split_path(path: &str) -> Option<(String, String)> {
    let (bot_segment, method) = path.trim_start_matches('/').split_once('/')?;
    let token = bot_segment
        .get(..3)
        .filter(|prefix| prefix.eq_ignore_ascii_case("bot"))
        .map(|_| &bot_segment[3..])?;
    if method.is_empty() || method.contains('/') {
        return None;
    }
    Some((token.to_string(), method.to_ascii_lowercase()))
}

fn respond_to_send_message(
    reply: Reply,
    message_id: i64,
    chat_id: &Value,
    text: Option<&str>,
    parse_mode: Option<&str>,
) -> Response {
    match reply {
        Reply::RetryAfter(seconds) => {
            return api_error(
                StatusCode::TOO_MANY_REQUESTS,
                &format!("Too Many Requests: retry after {seconds}"),
                Some(json!({ "retry_after": seconds })),
            );
        }
        Reply::ServerError(status) => {
            let status = StatusCode::from_u16(status).expect("a scripted 5xx status is valid");
            let description = status.canonical_reason().unwrap_or("Internal Server Error");
            return api_error(status, description, None);
        }
        Reply::BadRequest(description) => {
            return api_error(StatusCode::BAD_REQUEST, &description, None);
        }
        Reply::Ok => {}
    }

    let Some(text) = text.filter(|text| !text.is_empty()) else {
        return api_error(StatusCode::BAD_REQUEST, "Bad Request: message text is empty", None);
    };
    let visible = if parse_mode.is_some_and(|mode| mode.eq_ignore_ascii_case("html")) {
        match parse_telegram_html(text) {
            Ok(visible) => visible,
            Err(reason) => {
                let description = format!("Bad Request: can't parse entities: {reason}");
                return api_error(StatusCode::BAD_REQUEST, &description, None);
            }
        }
    } else {
        text.to_string()
    };
    if visible.encode_utf16().count() > MAX_TEXT_UTF16 {
        return api_error(StatusCode::BAD_REQUEST, "Bad Request: message is too long", None);
    }

    let result = json!({
        "message_id": message_id,
        "date": 1_714_557_600,
        "chat": chat_json(chat_id),
        "text": visible,
    });
    (StatusCode::OK, axum::Json(json!({ "ok": true, "result": result }))).into_response()
}

/// Builds a channel for an `@username`, a supergroup for a negative id and
/// a private chat for a positive one.
fn chat_json(chat_id: &Value) -> Value {
    match chat_id {
        Value::String(username) => json!({
            "id": -1_000_000_000_001_i64,
            "type": "channel",
            "title": username,
            "username": username.trim_start_matches('@'),
        }),
        id if id.as_i64().is_some_and(|id| id < 0) => {
            json!({ "id": id, "type": "supergroup", "title": "Seismo alerts" })
        }
        id => json!({ "id": id, "type": "private", "first_name": "Seismo" }),
    }
}

fn api_error(status: StatusCode, description: &str, parameters: Option<Value>) -> Response {
    let mut body = json!({
        "ok": false,
        "error_code": status.as_u16(),
        "description": description,
    });
    if let Some(parameters) = parameters {
        body["parameters"] = parameters;
    }
    (status, axum::Json(body)).into_response()
}
