//! The session state machine: command order, the transaction, and the
//! hand-offs to the embedder.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::{fmt, mem};

use smtp_proto::{
    AUTH_OAUTHBEARER, AUTH_PLAIN, AUTH_XOAUTH2, MAIL_BODY_7BIT, MAIL_BODY_8BITMIME, MAIL_SMTPUTF8,
    MailFrom, RcptTo, Request,
};
use zeroize::{Zeroize, Zeroizing};

use crate::data::{DataReceiver, Outcome};
use crate::reply::{line, rejection};
use crate::sasl::{self, BearerMechanism, Mechanism};
use crate::{
    Config, Decision, Error, ErrorKind, Event, MAX_AUTH_LINE, MAX_COMMAND_LINE, MAX_ERRORS,
    MAX_INPUT_BUFFER, Mode,
};

/// One SMTP server session, from greeting to close. See the crate docs for
/// the driving loop.
pub struct Session {
    config: Config,
    /// Input not yet processed. Allocated once at its bound: a reallocation
    /// would leave copies of SASL secrets in freed memory.
    buf: Vec<u8>,
    /// Discarding the rest of an over-long line, up to its LF.
    skipping: bool,
    /// Events produced and not yet returned by `next_event`.
    out: VecDeque<Event>,
    phase: Phase,
    /// The `HELO`/`EHLO` argument, and whether it was `EHLO`.
    greeted: Option<(String, bool)>,
    authenticated: bool,
    transaction: Option<Transaction>,
    errors: usize,
}

/// What the session does with the next input.
enum Phase {
    /// Reading command lines.
    Command,
    /// Sent `334 `, reading a SASL response line.
    SaslResponse(Mechanism),
    /// Sent the bearer error challenge, reading the client's acknowledgement.
    /// The final reply is sent after that line.
    SaslFailureAck(Vec<u8>),
    /// Receiving a message for this transaction.
    Data(Box<(Transaction, DataReceiver)>),
    /// An event waits for `respond`; input stays buffered.
    Decision(Pending),
    /// `StartTls` was emitted; waiting for `tls_started`.
    AwaitingTls,
    /// The connection is over.
    Closed,
}

/// The event waiting for a decision, with what the session needs to act on it.
enum Pending {
    Mail(Transaction),
    Recipient(String),
    Auth(Mechanism),
    Message,
}

/// The envelope of the mail transaction in progress.
struct Transaction {
    reverse_path: String,
    recipients: Vec<String>,
    body_8bit: bool,
    smtputf8: bool,
}

/// One step of line framing.
enum Framed {
    Line(Zeroizing<Vec<u8>>),
    TooLong,
    NeedMore,
}

impl Session {
    /// A session waiting for the client's first command. The embedder sends
    /// [`Session::greeting`] first.
    pub fn new(config: Config) -> Result<Self, Error> {
        let host_ok = (1..=255).contains(&config.hostname.len())
            && config
                .hostname
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
        if !host_ok {
            return Err(ErrorKind::InvalidHostname.into());
        }
        if config.max_recipients == 0 {
            return Err(ErrorKind::InvalidLimit("max_recipients").into());
        }
        if config.max_message_size == 0 {
            return Err(ErrorKind::InvalidLimit("max_message_size").into());
        }
        Ok(Self {
            config,
            buf: Vec::with_capacity(MAX_INPUT_BUFFER),
            skipping: false,
            out: VecDeque::new(),
            phase: Phase::Command,
            greeted: None,
            authenticated: false,
            transaction: None,
            errors: 0,
        })
    }

    /// The `220` greeting to send when the connection opens.
    pub fn greeting(&self) -> Vec<u8> {
        format!("220 {} ESMTP Stormproof\r\n", self.config.hostname).into_bytes()
    }

    /// Offers input. Returns how many bytes were taken. The rest must be
    /// offered again after [`Session::next_event`] has returned `None`. This
    /// is backpressure: while an event waits for a decision, at most
    /// [`MAX_INPUT_BUFFER`] bytes are held.
    ///
    /// After [`Event::StartTls`] and until [`Session::tls_started`], and
    /// after [`Event::Close`], all input is taken and discarded.
    #[must_use = "bytes not taken must be offered again"]
    pub fn feed(&mut self, input: &[u8]) -> usize {
        if matches!(self.phase, Phase::AwaitingTls | Phase::Closed) {
            return input.len();
        }
        let taken = input
            .len()
            .min(MAX_INPUT_BUFFER.saturating_sub(self.buf.len()));
        self.buf.extend_from_slice(&input[..taken]);
        taken
    }

    /// The next event. Returns `None` when more input is needed, while an
    /// event waits for [`Session::respond`] or [`Session::tls_started`], and
    /// after the session closed.
    pub fn next_event(&mut self) -> Option<Event> {
        loop {
            if let Some(event) = self.out.pop_front() {
                return Some(event);
            }
            if !self.step() {
                return None;
            }
        }
    }

    /// Answers the event that waits for a decision. The resulting reply
    /// comes out of [`Session::next_event`].
    ///
    /// Fails, and changes nothing, when no event waits or when a rejection
    /// would not be a single well-formed reply line.
    pub fn respond(&mut self, decision: Decision) -> Result<(), Error> {
        if !matches!(self.phase, Phase::Decision(_)) {
            return Err(ErrorKind::NoPendingDecision.into());
        }
        let refusal = match &decision {
            Decision::Accept => None,
            Decision::Reject {
                code,
                enhanced,
                text,
            } => Some((*code, rejection(*code, enhanced, text)?)),
        };
        let Phase::Decision(pending) = mem::replace(&mut self.phase, Phase::Command) else {
            return Err(ErrorKind::NoPendingDecision.into());
        };
        match (pending, refusal) {
            (Pending::Mail(transaction), None) => {
                self.transaction = Some(transaction);
                self.reply(250, "2.1.0", "Sender OK");
            }
            (Pending::Recipient(address), None) => {
                if let Some(transaction) = &mut self.transaction {
                    transaction.recipients.push(address);
                }
                self.reply(250, "2.1.5", "Recipient OK");
            }
            (Pending::Auth(_), None) => {
                self.authenticated = true;
                self.reply(235, "2.7.0", "Authentication successful");
            }
            (Pending::Message, None) => self.reply(250, "2.0.0", "Message accepted for delivery"),
            (Pending::Auth(Mechanism::Bearer(_)), Some((code, reply))) if code >= 500 => {
                let challenge = format!("334 {}\r\n", sasl::bearer_failure_challenge());
                self.out.push_back(Event::Reply(challenge.into_bytes()));
                self.phase = Phase::SaslFailureAck(reply);
            }
            (Pending::Auth(_), Some((_, reply))) => {
                self.out.push_back(Event::Reply(reply));
                self.count_error();
            }
            (Pending::Mail(_) | Pending::Recipient(_) | Pending::Message, Some((_, reply))) => {
                self.out.push_back(Event::Reply(reply));
            }
        }
        Ok(())
    }

    /// Tells the session the TLS handshake after [`Event::StartTls`]
    /// completed. As RFC 3207 4.2 requires, everything learnt from the
    /// client before is forgotten: the `EHLO`, any authentication, and any
    /// input buffered in plaintext. The client must send `EHLO` again.
    pub fn tls_started(&mut self) -> Result<(), Error> {
        if !matches!(self.phase, Phase::AwaitingTls) {
            return Err(ErrorKind::NotAwaitingTls.into());
        }
        self.config.tls_active = true;
        self.greeted = None;
        self.authenticated = false;
        self.transaction = None;
        self.discard(self.buf.len());
        self.skipping = false;
        self.phase = Phase::Command;
        Ok(())
    }

    /// Bytes held for the client: unprocessed input plus the message being
    /// received. It stays under [`MAX_INPUT_BUFFER`] plus
    /// [`Config::max_message_size`].
    pub fn buffered_len(&self) -> usize {
        let body = match &self.phase {
            Phase::Data(data) => data.1.held(),
            _ => 0,
        };
        self.buf.len() + body
    }

    /// Whether [`Event::Close`] was produced.
    pub fn is_closed(&self) -> bool {
        matches!(self.phase, Phase::Closed)
    }

    /// The argument of the last `HELO` or `EHLO`, as the client sent it.
    pub fn helo_name(&self) -> Option<&str> {
        self.greeted.as_ref().map(|(name, _)| name.as_str())
    }

    /// Whether an `AUTH` was accepted in this session.
    pub fn is_authenticated(&self) -> bool {
        self.authenticated
    }

    /// Whether the connection is protected by TLS.
    pub fn tls_active(&self) -> bool {
        self.config.tls_active
    }

    /// Processes buffered input until it produces output or needs more.
    /// Returns false when no progress is possible.
    fn step(&mut self) -> bool {
        match &self.phase {
            Phase::Command => match self.frame() {
                Framed::Line(line) => self.command(&line),
                Framed::TooLong => self.client_error(500, "5.5.6", "Line too long"),
                Framed::NeedMore => return false,
            },
            Phase::SaslResponse(_) => match self.frame() {
                Framed::Line(line) => self.sasl_continuation(&line),
                Framed::TooLong => {
                    self.phase = Phase::Command;
                    self.client_error(500, "5.5.6", "Line too long");
                }
                Framed::NeedMore => return false,
            },
            Phase::SaslFailureAck(_) => {
                // RFC 7628 3.2.3 expects a lone %x01; XOAUTH2 clients send an
                // empty line. Any line, even a bad one, ends the exchange.
                if let Framed::NeedMore = self.frame() {
                    return false;
                }
                if let Phase::SaslFailureAck(reply) = mem::replace(&mut self.phase, Phase::Command)
                {
                    self.out.push_back(Event::Reply(reply));
                }
                self.count_error();
            }
            Phase::Data(_) => return self.data(),
            Phase::Decision(_) | Phase::AwaitingTls | Phase::Closed => return false,
        }
        true
    }

    /// Takes the next line from the buffer, or reports an over-long one once
    /// it has been skipped up to its LF. The part of an over-long line that
    /// has arrived is discarded at once, so it is never held beyond the limit.
    fn frame(&mut self) -> Framed {
        if !self.skipping {
            let limit = self.line_limit();
            let window = &self.buf[..self.buf.len().min(limit)];
            if let Some(lf) = window.iter().position(|&b| b == b'\n') {
                let line = Zeroizing::new(self.buf[..=lf].to_vec());
                self.discard(lf + 1);
                return Framed::Line(line);
            }
            if self.buf.len() < limit {
                return Framed::NeedMore;
            }
            self.skipping = true;
        }
        match self.buf.iter().position(|&b| b == b'\n') {
            Some(lf) => {
                self.discard(lf + 1);
                self.skipping = false;
                Framed::TooLong
            }
            None => {
                self.discard(self.buf.len());
                Framed::NeedMore
            }
        }
    }

    /// The longest line acceptable now: SASL lines may carry long tokens.
    fn line_limit(&self) -> usize {
        let sasl = match self.phase {
            Phase::SaslResponse(_) | Phase::SaslFailureAck(_) => true,
            _ => {
                self.config.mode == Mode::Submission
                    && self
                        .buf
                        .get(..5)
                        .is_some_and(|p| p.eq_ignore_ascii_case(b"AUTH "))
            }
        };
        if sasl {
            MAX_AUTH_LINE
        } else {
            MAX_COMMAND_LINE
        }
    }

    /// Drops the first `n` buffered bytes, zeroing them first: they may be a
    /// SASL response.
    fn discard(&mut self, n: usize) {
        self.buf[..n].zeroize();
        self.buf.drain(..n);
    }

    /// Handles one command line, CR LF included.
    fn command(&mut self, line: &[u8]) {
        let content = match line_content(line) {
            Ok(content) => content,
            Err(reason) => return self.client_error(500, "5.5.2", reason),
        };
        let mut bytes = line.iter();
        let request = match Request::parse(&mut bytes) {
            Ok(request) => request,
            Err(error) => return self.parse_error(error),
        };
        match request {
            Request::Ehlo { host } => self.hello(host, true),
            Request::Helo { host } => self.hello(host, false),
            Request::Mail { from } => self.mail(from),
            Request::Rcpt { to } => self.rcpt(to, content),
            Request::Data => self.data_command(),
            Request::Auth {
                mechanism,
                initial_response,
            } => self.auth(mechanism, &initial_response),
            Request::StartTls => self.starttls(content),
            Request::Rset => {
                self.transaction = None;
                self.reply(250, "2.0.0", "OK");
            }
            Request::Noop { .. } => self.reply(250, "2.0.0", "OK"),
            // Never confirm or deny that a mailbox exists (RFC 5321 3.5.3).
            Request::Vrfy { .. } => self.reply(
                252,
                "2.0.0",
                "Cannot VRFY user, but will accept message and attempt delivery",
            ),
            Request::Expn { .. } => self.client_error(502, "5.5.1", "EXPN not implemented"),
            Request::Help { .. } => self.reply(
                214,
                "2.0.0",
                "Commands: EHLO HELO MAIL RCPT DATA RSET NOOP VRFY HELP QUIT STARTTLS AUTH",
            ),
            Request::Quit => {
                let bye = format!(
                    "{} Service closing transmission channel",
                    self.config.hostname
                );
                self.reply(221, "2.0.0", &bye);
                self.close();
            }
            // BDAT/CHUNKING is not advertised, and LHLO, ETRN, ATRN and BURL
            // belong to other protocols or unoffered extensions.
            _ => self.client_error(500, "5.5.2", "Command unrecognized"),
        }
    }

    fn parse_error(&mut self, error: smtp_proto::Error) {
        match error {
            smtp_proto::Error::UnknownCommand => {
                self.client_error(500, "5.5.2", "Command unrecognized")
            }
            smtp_proto::Error::InvalidSenderAddress => {
                self.client_error(501, "5.1.7", "Invalid sender address")
            }
            smtp_proto::Error::InvalidRecipientAddress => {
                self.client_error(501, "5.1.3", "Invalid recipient address")
            }
            smtp_proto::Error::UnsupportedParameter { .. } => {
                self.client_error(555, "5.5.4", "Unsupported parameter")
            }
            smtp_proto::Error::SyntaxError { syntax } => {
                let text = format!("Syntax: {syntax}");
                self.client_error(501, "5.5.4", &text)
            }
            _ => self.client_error(501, "5.5.4", "Invalid command arguments"),
        }
    }

    fn hello(&mut self, host: Cow<'_, str>, extended: bool) {
        // RFC 5321 4.1.4: a new EHLO/HELO abandons the transaction.
        self.transaction = None;
        self.greeted = Some((host.into_owned(), extended));
        let hostname = &self.config.hostname;
        if !extended {
            self.out
                .push_back(Event::Reply(format!("250 {hostname}\r\n").into_bytes()));
            return;
        }
        let mut lines = vec![
            hostname.clone(),
            "PIPELINING".to_owned(),
            format!("SIZE {}", self.config.max_message_size),
            "8BITMIME".to_owned(),
            "SMTPUTF8".to_owned(),
            "ENHANCEDSTATUSCODES".to_owned(),
        ];
        if self.config.tls_available && !self.config.tls_active {
            lines.push("STARTTLS".to_owned());
        }
        if self.auth_offered() {
            lines.push("AUTH PLAIN OAUTHBEARER XOAUTH2".to_owned());
        }
        let mut reply = String::new();
        let last = lines.len() - 1;
        for (i, text) in lines.iter().enumerate() {
            let separator = if i == last { ' ' } else { '-' };
            reply.push_str(&format!("250{separator}{text}\r\n"));
        }
        self.out.push_back(Event::Reply(reply.into_bytes()));
    }

    fn auth_offered(&self) -> bool {
        self.config.mode == Mode::Submission
            && (self.config.tls_active || !self.config.require_tls_for_auth)
    }

    fn mail(&mut self, from: MailFrom<Cow<'_, str>>) {
        let Some((_, extended)) = self.greeted else {
            return self.client_error(503, "5.5.1", "Send HELO or EHLO first");
        };
        if self.transaction.is_some() {
            return self.client_error(503, "5.5.1", "Nested MAIL command");
        }
        if self.config.mode == Mode::Submission && !self.authenticated {
            return self.client_error(530, "5.7.0", "Authentication required");
        }
        // Only the extensions advertised may be used (RFC 5321 4.1.1.11).
        // AUTH= (RFC 4954 5) is accepted and ignored: it only matters
        // between trusted relays.
        let known = MAIL_BODY_7BIT | MAIL_BODY_8BITMIME | MAIL_SMTPUTF8;
        let unsupported = from.flags & !known != 0
            || from.trans_id.is_some()
            || from.by != 0
            || from.env_id.is_some()
            || from.solicit.is_some()
            || from.mtrk.is_some()
            || from.hold_for != 0
            || from.hold_until != 0
            || from.mt_priority != 0;
        let any = unsupported || from.flags != 0 || from.size != 0 || from.auth.is_some();
        if any && !extended {
            return self.client_error(555, "5.5.4", "MAIL parameters require EHLO");
        }
        if unsupported {
            return self.client_error(555, "5.5.4", "Unsupported MAIL parameter");
        }
        if from.size > self.config.max_message_size {
            return self.reply(
                552,
                "5.3.4",
                "Message size exceeds fixed maximum message size",
            );
        }
        let smtputf8 = from.flags & MAIL_SMTPUTF8 != 0;
        if !smtputf8 && !from.address.is_ascii() {
            return self.reply(553, "5.6.7", "Non-ASCII address requires SMTPUTF8");
        }
        let transaction = Transaction {
            reverse_path: from.address.into_owned(),
            recipients: Vec::new(),
            body_8bit: from.flags & MAIL_BODY_8BITMIME != 0,
            smtputf8,
        };
        self.out.push_back(Event::MailFrom {
            reverse_path: transaction.reverse_path.clone(),
            size: (from.size != 0).then_some(from.size),
            body_8bit: transaction.body_8bit,
            smtputf8,
        });
        self.phase = Phase::Decision(Pending::Mail(transaction));
    }

    fn rcpt(&mut self, to: RcptTo<Cow<'_, str>>, content: &[u8]) {
        let Some((smtputf8, accepted)) = self
            .transaction
            .as_ref()
            .map(|t| (t.smtputf8, t.recipients.len()))
        else {
            return self.client_error(503, "5.5.1", "Need MAIL before RCPT");
        };
        // NOTIFY and ORCPT (DSN), RRVS and CONNEG are not advertised.
        if to.flags != 0 || to.orcpt.is_some() || to.rrvs != 0 {
            return self.client_error(555, "5.5.4", "Unsupported RCPT parameter");
        }
        let address = if !to.address.is_empty() {
            to.address.into_owned()
        } else if names_postmaster(content) {
            "postmaster".to_owned()
        } else {
            return self.client_error(501, "5.1.3", "Invalid recipient address");
        };
        if !smtputf8 && !address.is_ascii() {
            return self.reply(553, "5.6.7", "Non-ASCII address requires SMTPUTF8");
        }
        if accepted >= self.config.max_recipients {
            return self.reply(452, "4.5.3", "Too many recipients");
        }
        self.out.push_back(Event::Recipient {
            forward_path: address.clone(),
        });
        self.phase = Phase::Decision(Pending::Recipient(address));
    }

    fn data_command(&mut self) {
        let Some(transaction) = self.transaction.take() else {
            return self.client_error(503, "5.5.1", "Need MAIL command");
        };
        if transaction.recipients.is_empty() {
            // RFC 5321 3.3 and RFC 2920: with pipelining, all RCPTs may
            // have failed before DATA arrives. The transaction stays open
            // for further RCPTs.
            self.transaction = Some(transaction);
            return self.reply(554, "5.5.1", "No valid recipients");
        }
        self.out.push_back(Event::Reply(
            b"354 End data with <CR><LF>.<CR><LF>\r\n".to_vec(),
        ));
        let receiver = DataReceiver::new(self.config.max_message_size);
        self.phase = Phase::Data(Box::new((transaction, receiver)));
    }

    /// Feeds buffered input to the message; returns false when more is needed.
    fn data(&mut self) -> bool {
        let Phase::Data(data) = &mut self.phase else {
            return false;
        };
        if self.buf.is_empty() {
            return false;
        }
        let (used, done) = data.1.ingest(&self.buf);
        self.buf.drain(..used);
        if !done {
            return true;
        }
        let Phase::Data(data) = mem::replace(&mut self.phase, Phase::Command) else {
            return true;
        };
        let (transaction, receiver) = *data;
        match receiver.finish() {
            Outcome::Message(data) => {
                self.out.push_back(Event::Message {
                    reverse_path: transaction.reverse_path,
                    recipients: transaction.recipients,
                    body_8bit: transaction.body_8bit,
                    smtputf8: transaction.smtputf8,
                    data,
                });
                self.phase = Phase::Decision(Pending::Message);
            }
            Outcome::BareLineEnding => self.client_error(550, "5.5.2", "Bare LF or CR not allowed"),
            Outcome::TooBig => self.reply(
                552,
                "5.3.4",
                "Message size exceeds fixed maximum message size",
            ),
            Outcome::LineTooLong => {
                self.reply(554, "5.6.0", "Message line longer than 998 characters")
            }
        }
        true
    }

    fn starttls(&mut self, content: &[u8]) {
        if self.config.tls_active {
            return self.client_error(503, "5.5.1", "TLS already active");
        }
        if !self.config.tls_available {
            return self.client_error(502, "5.5.1", "STARTTLS not available");
        }
        if content.trim_ascii().len() != b"STARTTLS".len() {
            return self.client_error(501, "5.5.4", "Syntax: STARTTLS (no parameters)");
        }
        if !matches!(self.greeted, Some((_, true))) {
            return self.client_error(503, "5.5.1", "Send EHLO first");
        }
        self.reply(220, "2.0.0", "Ready to start TLS");
        self.out.push_back(Event::StartTls);
        // Anything after STARTTLS in this plaintext buffer was injectable by
        // a man in the middle (CVE-2011-0411).
        self.discard(self.buf.len());
        self.skipping = false;
        self.transaction = None;
        self.phase = Phase::AwaitingTls;
    }

    fn auth(&mut self, mechanism: u64, initial_response: &str) {
        if self.config.mode != Mode::Submission {
            return self.client_error(502, "5.5.1", "AUTH not available");
        }
        if !matches!(self.greeted, Some((_, true))) {
            return self.client_error(503, "5.5.1", "Send EHLO first");
        }
        if self.authenticated {
            return self.client_error(503, "5.5.1", "Already authenticated");
        }
        if self.transaction.is_some() {
            return self.client_error(503, "5.5.1", "AUTH not allowed during a mail transaction");
        }
        if !self.auth_offered() {
            return self.client_error(
                538,
                "5.7.11",
                "Encryption required for requested authentication mechanism",
            );
        }
        let mechanism = match mechanism {
            AUTH_PLAIN => Mechanism::Plain,
            AUTH_OAUTHBEARER => Mechanism::Bearer(BearerMechanism::OAuthBearer),
            AUTH_XOAUTH2 => Mechanism::Bearer(BearerMechanism::XOAuth2),
            _ => return self.client_error(504, "5.5.4", "Unrecognized authentication type"),
        };
        match initial_response {
            "" => {
                self.out.push_back(Event::Reply(b"334 \r\n".to_vec()));
                self.phase = Phase::SaslResponse(mechanism);
            }
            // RFC 4954 4: "=" is an initial response of zero length.
            "=" => self.sasl_message(mechanism, b""),
            response => self.sasl_response(mechanism, response.as_bytes()),
        }
    }

    /// Handles the line after `334 `.
    fn sasl_continuation(&mut self, line: &[u8]) {
        let Phase::SaslResponse(mechanism) = mem::replace(&mut self.phase, Phase::Command) else {
            return;
        };
        match line_content(line) {
            Err(reason) => self.client_error(500, "5.5.2", reason),
            Ok(b"*") => self.client_error(501, "5.0.0", "Authentication cancelled"),
            Ok(response) => self.sasl_response(mechanism, response),
        }
    }

    fn sasl_response(&mut self, mechanism: Mechanism, response: &[u8]) {
        match sasl::decode(response) {
            Some(message) => self.sasl_message(mechanism, &message),
            None => self.client_error(501, "5.5.2", "Cannot decode base64 response"),
        }
    }

    fn sasl_message(&mut self, mechanism: Mechanism, message: &[u8]) {
        match sasl::parse(mechanism, message) {
            Some(credentials) => {
                self.out.push_back(Event::Authenticate(credentials));
                self.phase = Phase::Decision(Pending::Auth(mechanism));
            }
            None => self.client_error(501, "5.5.2", "Malformed authentication message"),
        }
    }

    fn reply(&mut self, code: u16, enhanced: &str, text: &str) {
        self.out.push_back(Event::Reply(line(code, enhanced, text)));
    }

    /// Replies to a client error and counts it against [`MAX_ERRORS`].
    fn client_error(&mut self, code: u16, enhanced: &str, text: &str) {
        self.reply(code, enhanced, text);
        self.count_error();
    }

    fn count_error(&mut self) {
        self.errors += 1;
        if self.errors >= MAX_ERRORS {
            let text = format!(
                "{} Too many errors, closing connection",
                self.config.hostname
            );
            self.reply(421, "4.7.0", &text);
            self.close();
        }
    }

    fn close(&mut self) {
        self.discard(self.buf.len());
        self.transaction = None;
        self.phase = Phase::Closed;
        self.out.push_back(Event::Close);
    }
}

impl fmt::Debug for Session {
    /// Leaves out buffered input and message content: the buffer may hold a
    /// pipelined SASL response.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let phase = match &self.phase {
            Phase::Command => "command",
            Phase::SaslResponse(_) => "sasl response",
            Phase::SaslFailureAck(_) => "sasl failure acknowledgement",
            Phase::Data(_) => "data",
            Phase::Decision(_) => "awaiting decision",
            Phase::AwaitingTls => "awaiting TLS",
            Phase::Closed => "closed",
        };
        f.debug_struct("Session")
            .field("config", &self.config)
            .field("phase", &phase)
            .field("helo_name", &self.helo_name())
            .field("authenticated", &self.authenticated)
            .field("buffered_len", &self.buffered_len())
            .field("errors", &self.errors)
            .finish_non_exhaustive()
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // The buffer may still hold a SASL response.
        self.buf.zeroize();
    }
}

/// A command line without its CR LF, refusing bare CR, bare LF and NUL:
/// servers that tolerate them disagree with others about where commands
/// end. Invalid UTF-8 is refused too, as the parser would otherwise
/// replace it.
fn line_content(line: &[u8]) -> Result<&[u8], &'static str> {
    let content = line
        .strip_suffix(b"\r\n")
        .ok_or("Line must end with CRLF")?;
    if content.iter().any(|&b| b == b'\r' || b == b'\n' || b == 0) {
        return Err("Bare CR or NUL not allowed");
    }
    if std::str::from_utf8(content).is_err() {
        return Err("Invalid UTF-8");
    }
    Ok(content)
}

/// Whether a `RCPT` line whose parsed address came back empty named
/// `<Postmaster>`. smtp-proto reports both `<>` and `<Postmaster>` as an
/// empty address, but RFC 5321 4.5.1 requires accepting the second.
fn names_postmaster(content: &[u8]) -> bool {
    let Some(open) = content.iter().position(|&b| b == b'<') else {
        return false;
    };
    let inside = &content[open + 1..];
    let Some(close) = inside.iter().position(|&b| b == b'>') else {
        return false;
    };
    let address = inside[..close].trim_ascii();
    address.len() >= 10 && address[address.len() - 10..].eq_ignore_ascii_case(b"postmaster")
}
