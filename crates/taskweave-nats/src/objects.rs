//! Values above the server's max payload: carried through the namespace's JetStream object
//! store (chunked by async-nats), the envelope holding only the object's name.

use async_nats::jetstream;
use async_nats::jetstream::object_store::{self, ObjectStore};
use tokio::io::AsyncReadExt;
use tokio::sync::OnceCell;

use crate::wire::Body;

/// Room left in a message for the envelope around an inline value (ids, names, signature text
/// and headers).
const ENVELOPE_ROOM: usize = 16 * 1024;

/// The object store of one namespace, opened on first use.
pub(crate) struct Objects {
    js: jetstream::Context,
    bucket: String,
    /// Objects older than this are removed by the server (values nobody came back for).
    max_age: std::time::Duration,
    store: OnceCell<ObjectStore>,
    max_payload: usize,
}

impl Objects {
    pub(crate) fn new(
        js: jetstream::Context,
        bucket: String,
        max_age: std::time::Duration,
        max_payload: usize,
    ) -> Objects {
        Objects {
            js,
            bucket,
            max_age,
            store: OnceCell::new(),
            max_payload,
        }
    }

    /// The largest value sent inline.
    pub(crate) fn inline_limit(&self) -> usize {
        self.max_payload.saturating_sub(ENVELOPE_ROOM).max(1024)
    }

    async fn store(&self) -> Result<&ObjectStore, String> {
        self.store
            .get_or_try_init(|| async {
                if let Ok(store) = self.js.get_object_store(&self.bucket).await {
                    return Ok(store);
                }
                match self
                    .js
                    .create_object_store(object_store::Config {
                        bucket: self.bucket.clone(),
                        max_age: self.max_age,
                        ..Default::default()
                    })
                    .await
                {
                    Ok(store) => Ok(store),
                    // Another process created it in between.
                    Err(create) => self.js.get_object_store(&self.bucket).await.map_err(|e| {
                        format!(
                            "cannot open the object store `{}` for large values: {create}; {e}",
                            self.bucket
                        )
                    }),
                }
            })
            .await
    }

    /// `bytes` inline when they fit a message, else stored under `name`.
    pub(crate) async fn wrap(&self, name: &str, bytes: Vec<u8>) -> Result<Body, String> {
        if bytes.len() <= self.inline_limit() {
            return Ok(Body::Inline(bytes));
        }
        let store = self.store().await?;
        let size = bytes.len();
        let mut reader: &[u8] = &bytes;
        store.put(name, &mut reader).await.map_err(|e| {
            format!(
                "cannot store a {size}-byte value (over the server's max payload of {} bytes) in the object store `{}`: {e}",
                self.max_payload, self.bucket
            )
        })?;
        Ok(Body::Object(name.to_owned()))
    }

    /// The bytes of `body`, read from the object store when it names an object.
    pub(crate) async fn unwrap(&self, body: Body) -> Result<Vec<u8>, String> {
        let name = match body {
            Body::Inline(bytes) => return Ok(bytes),
            Body::Object(name) => name,
        };
        let store = self.store().await?;
        let mut object = store.get(&name).await.map_err(|e| {
            format!(
                "cannot read object `{name}` from the object store `{}`: {e}",
                self.bucket
            )
        })?;
        let mut bytes = Vec::new();
        object.read_to_end(&mut bytes).await.map_err(|e| {
            format!(
                "cannot read object `{name}` from the object store `{}`: {e}",
                self.bucket
            )
        })?;
        Ok(bytes)
    }

    /// Removes an object once it was read; failures only leave it to `max_age`.
    pub(crate) async fn remove(&self, body: &Body) {
        // An inline body has nothing stored: no need to open the store for it.
        if let Body::Object(name) = body
            && let Ok(store) = self.store().await
        {
            let _ = store.delete(name).await;
        }
    }
}
