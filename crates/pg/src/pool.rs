//! A small connection pool: idle clients kept in a `Mutex<Vec<Client>>`, a new
//! connection made when none is idle, a client given back when its user is done
//! unless its connection broke.
//!
//! Every client the pool lets go is closed through [`close`]: a blocking
//! `postgres::Client` closes its connection on drop by blocking on a runtime of
//! its own, which panics on a thread that drives an async runtime (a task of the
//! HTTP server holding the last handle to the database, say).

use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use postgres::{Client, Config, NoTls};

use crate::Error;
use crate::error::describe;

pub(crate) struct Pool {
    config: Config,
    /// `host:port/dbname` for messages (never the password).
    target: String,
    idle: Mutex<Vec<Client>>,
    max_idle: usize,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

/// `host:port/dbname` of a config, for messages.
fn target_of(c: &Config) -> String {
    let host = c
        .get_hosts()
        .first()
        .map(|h| match h {
            postgres::config::Host::Tcp(h) => h.clone(),
            postgres::config::Host::Unix(p) => p.display().to_string(),
        })
        .unwrap_or_else(|| "localhost".to_owned());
    let port = c.get_ports().first().copied().unwrap_or(5432);
    let db = c.get_dbname().or(c.get_user()).unwrap_or("postgres");
    format!("{host}:{port}/{db}")
}

impl Pool {
    pub(crate) fn new(
        url: &str,
        max_idle: usize,
        connect_timeout: Duration,
        application_name: &str,
    ) -> Result<Arc<Pool>, Error> {
        let mut config: Config = url
            .parse()
            .map_err(|e: postgres::Error| Error::InvalidUrl {
                detail: describe(&e),
            })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(connect_timeout);
        }
        if config.get_application_name().is_none() {
            config.application_name(application_name);
        }
        let target = target_of(&config);
        Ok(Arc::new(Pool {
            config,
            target,
            idle: Mutex::new(Vec::new()),
            max_idle,
        }))
    }

    pub(crate) fn target(&self) -> &str {
        &self.target
    }

    /// A new connection (never pooled yet).
    pub(crate) fn connect(&self) -> Result<Client, Error> {
        self.config.connect(NoTls).map_err(|e| Error::Connect {
            target: self.target.clone(),
            detail: describe(&e),
        })
    }

    /// An idle client, or a new connection.
    pub(crate) fn get(self: &Arc<Self>) -> Result<Pooled, Error> {
        let idle = {
            let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
            idle.pop()
        };
        let client = match idle {
            Some(c) if !c.is_closed() => c,
            _ => self.connect()?,
        };
        Ok(Pooled {
            client: Some(client),
            pool: Arc::clone(self),
        })
    }

    fn put(&self, client: Client) {
        if client.is_closed() {
            close(vec![client]);
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < self.max_idle {
            idle.push(client);
        } else {
            drop(idle);
            close(vec![client]);
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        let idle = self.idle.get_mut().unwrap_or_else(|p| p.into_inner());
        close(std::mem::take(idle));
    }
}

/// Closes `clients`: here, or on a thread of its own (waited for) when this
/// thread is inside an async runtime, where the blocking client's close would
/// panic ("Cannot start a runtime from within a runtime").
pub(crate) fn close(clients: Vec<Client>) {
    if clients.is_empty() {
        return;
    }
    if tokio::runtime::Handle::try_current().is_err() {
        drop(clients);
        return;
    }
    std::thread::scope(|s| {
        s.spawn(move || drop(clients));
    });
}

/// A client taken from the pool; goes back on drop (unless [`Pooled::discard`]ed
/// or its connection closed).
pub(crate) struct Pooled {
    client: Option<Client>,
    pool: Arc<Pool>,
}

impl Pooled {
    /// Closes this connection instead of giving it back.
    pub(crate) fn discard(mut self) {
        close(self.client.take().into_iter().collect());
    }
}

impl Deref for Pooled {
    type Target = Client;
    fn deref(&self) -> &Client {
        // Only `discard` (which consumes self) and `drop` take the client.
        match &self.client {
            Some(c) => c,
            None => unreachable_client(),
        }
    }
}

impl DerefMut for Pooled {
    fn deref_mut(&mut self) -> &mut Client {
        match &mut self.client {
            Some(c) => c,
            None => unreachable_client(),
        }
    }
}

#[allow(clippy::panic)]
fn unreachable_client() -> ! {
    panic!("a pooled client was used after it was given back")
}

impl Drop for Pooled {
    fn drop(&mut self) {
        if let Some(c) = self.client.take() {
            self.pool.put(c);
        }
    }
}
