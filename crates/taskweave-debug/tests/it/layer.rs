//! The ready layer: what a person reads, and that it leaves other targets to other layers.

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use taskweave_core::{Runtime, create_task_named};
use taskweave_debug::{Debug, PrettyLayer};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

use crate::capture;

#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Shared {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

/// Counts the events of target `app` it is given.
struct AppEvents(Arc<AtomicUsize>);

impl<S: Subscriber> Layer<S> for AppEvents {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        if event.metadata().target() == "app" {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// Runs a slow task on a current-thread runtime (so every event is emitted on this thread,
/// where the scoped subscriber applies) and returns what the layer printed.
fn printed(layer: PrettyLayer, out: &Shared, app: &Arc<AtomicUsize>) -> String {
    let subscriber = tracing_subscriber::registry()
        .with(AppEvents(app.clone()))
        .with(layer.filtered());
    tracing::subscriber::with_default(subscriber, || {
        let debug = Debug::new()
            .slow_poll(Duration::from_millis(20))
            .hang_after(None)
            .blocked_after(None)
            .build();
        let rt = Runtime::builder()
            .current_thread()
            .observer(debug)
            .build()
            .unwrap();
        rt.run(async {
            create_task_named("blocker", async {
                std::thread::sleep(Duration::from_millis(30))
            })
            .await
            .unwrap();
            tracing::debug!(target: "app", "an application event");
        })
        .unwrap();
    });
    out.text()
}

#[test]
fn reports_read_like_asyncio_and_other_targets_are_left_alone() {
    let _serial = capture::serial();
    let out = Shared::default();
    let app = Arc::new(AtomicUsize::new(0));
    let text = printed(PrettyLayer::new().with_writer(out.clone()), &out, &app);
    let first = text.lines().next().unwrap();
    assert!(
        first.starts_with("WARNING:taskweave: Executing <Task name='blocker' id="),
        "{text}"
    );
    assert!(first.contains("tests/it/layer.rs"), "{text}");
    assert!(first.ends_with(" seconds"), "{text}");
    assert!(
        text.lines().nth(1).unwrap().starts_with("    hint: "),
        "{text}"
    );
    assert!(
        !text.contains("DEBUG"),
        "debug logs are off by default: {text}"
    );
    assert_eq!(
        app.load(Ordering::SeqCst),
        1,
        "the other layer still sees its events"
    );
}

#[test]
fn debug_logs_are_printed_when_asked_for() {
    let _serial = capture::serial();
    let out = Shared::default();
    let app = Arc::new(AtomicUsize::new(0));
    let text = printed(
        PrettyLayer::new()
            .with_debug_logs(true)
            .with_writer(out.clone()),
        &out,
        &app,
    );
    assert!(
        text.lines().any(
            |l| l.starts_with("DEBUG:taskweave: <Task name='blocker' id=")
                && l.ends_with(" created")
        ),
        "{text}"
    );
    assert!(text.lines().any(|l| l.contains("finished after")), "{text}");
}
