//! How to reach the server: addresses, credentials and TLS, passed through to async-nats. The
//! client and the worker share it.

use std::path::PathBuf;
use std::time::Duration;

use taskweave_core::Error;

/// How to prove who we are to the server. Passed to async-nats as given.
///
/// # Examples
///
/// ```
/// use taskweave_nats::Credentials;
/// let c = Credentials::UserPassword { user: "app".into(), password: "secret".into() };
/// assert!(!format!("{c:?}").contains("secret"));
/// ```
#[derive(Clone, Default)]
#[non_exhaustive]
pub enum Credentials {
    /// No credentials (a server without authorisation).
    #[default]
    None,
    /// A user name and password.
    UserPassword {
        /// The user.
        user: String,
        /// The password.
        password: String,
    },
    /// An authorisation token.
    Token(String),
    /// An NKey private key (the `SU...` string); the server must know its public key.
    NKey(String),
    /// A `.creds` file (a JWT and an NKey private key), as made by `nsc`.
    CredsFile(PathBuf),
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print secrets.
        match self {
            Credentials::None => f.write_str("None"),
            Credentials::UserPassword { user, .. } => write!(f, "UserPassword({user}, ***)"),
            Credentials::Token(_) => f.write_str("Token(***)"),
            Credentials::NKey(_) => f.write_str("NKey(***)"),
            Credentials::CredsFile(p) => write!(f, "CredsFile({})", p.display()),
        }
    }
}

/// TLS settings, passed to async-nats.
#[derive(Debug, Clone, Default)]
pub(crate) struct Tls {
    pub(crate) require: bool,
    pub(crate) root_certificates: Vec<PathBuf>,
    pub(crate) client_certificate: Option<(PathBuf, PathBuf)>,
}

/// Where and how to connect.
#[derive(Debug, Clone)]
pub(crate) struct ConnectConfig {
    pub(crate) servers: Vec<String>,
    pub(crate) credentials: Credentials,
    pub(crate) tls: Tls,
    pub(crate) timeout: Duration,
    pub(crate) name: String,
}

impl ConnectConfig {
    pub(crate) fn new(name: &str) -> ConnectConfig {
        ConnectConfig {
            servers: Vec::new(),
            credentials: Credentials::None,
            tls: Tls::default(),
            timeout: Duration::from_secs(5),
            name: name.to_owned(),
        }
    }

    /// Connects, within `timeout`.
    pub(crate) async fn connect(&self) -> Result<async_nats::Client, Error> {
        let servers = if self.servers.is_empty() {
            vec!["nats://127.0.0.1:4222".to_owned()]
        } else {
            self.servers.clone()
        };
        let shown = servers.join(", ");
        let mut options = async_nats::ConnectOptions::new()
            .name(&self.name)
            .connection_timeout(self.timeout)
            // Calls wait as long as their own timeouts say, not the client's 10 s default.
            .request_timeout(None);
        options = match &self.credentials {
            Credentials::None => options,
            Credentials::UserPassword { user, password } => {
                options.user_and_password(user.clone(), password.clone())
            }
            Credentials::Token(t) => options.token(t.clone()),
            Credentials::NKey(key) => options.nkey(key.clone()),
            Credentials::CredsFile(path) => options.credentials_file(path).await.map_err(|e| {
                Error::broken(format!(
                    "cannot read the NATS credentials file {}: {e}",
                    path.display()
                ))
            })?,
        };
        if self.tls.require {
            options = options.require_tls(true);
        }
        for root in &self.tls.root_certificates {
            options = options.add_root_certificates(root.clone());
        }
        if let Some((cert, key)) = &self.tls.client_certificate {
            options = options.add_client_certificate(cert.clone(), key.clone());
        }
        let addrs: Vec<async_nats::ServerAddr> = servers
            .iter()
            .map(|s| {
                s.parse::<async_nats::ServerAddr>()
                    .map_err(|e| Error::broken(format!("bad NATS server address `{s}`: {e}")))
            })
            .collect::<Result<_, _>>()?;
        let limit = self.timeout;
        match tokio::time::timeout(limit, options.connect(addrs)).await {
            Ok(Ok(client)) => Ok(client),
            Ok(Err(e)) => Err(Error::broken(format!(
                "cannot connect to NATS at {shown}: {e} (is nats-server running there?)"
            ))),
            Err(_) => Err(Error::broken(format!(
                "cannot connect to NATS at {shown}: no answer within {limit:?}"
            ))),
        }
    }
}
