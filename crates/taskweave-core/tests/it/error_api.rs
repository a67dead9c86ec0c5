//! The opaque error: kinds, accessors, one-line `Display`, the alternate form and cheap clones.

use std::error::Error as _;
use std::time::Duration;

use taskweave_core::{Error, ErrorKind, TaskGroup, create_task_named, sleep};

use crate::rt;

fn every_kind() -> Vec<(Error, ErrorKind)> {
    vec![
        (
            Error::cancelled(Some("enough".into())),
            ErrorKind::Cancelled,
        ),
        (
            Error::timed_out(Duration::from_millis(5)),
            ErrorKind::TimedOut,
        ),
        (
            Error::panicked(
                "boom".into(),
                Some("loader".into()),
                None,
                Some("0: loader\n1: main".into()),
            ),
            ErrorKind::Panicked,
        ),
        (
            Error::failed(std::io::Error::other("disk full")),
            ErrorKind::Failed,
        ),
        (
            Error::worker_died(41, None, Some(9), "square (task 3)".into()),
            ErrorKind::WorkerDied,
        ),
        (Error::shutdown("pool closed"), ErrorKind::Shutdown),
        (Error::broken("no threads"), ErrorKind::Broken),
        (
            Error::wire("argument of task 3", "too long"),
            ErrorKind::Wire,
        ),
        (
            Error::group(vec![Error::refused("a"), Error::refused("b")]),
            ErrorKind::Group,
        ),
        (Error::refused("blocking wait"), ErrorKind::Refused),
        (Error::abandoned(), ErrorKind::Abandoned),
        (Error::interrupted(), ErrorKind::Interrupted),
    ]
}

#[test]
fn each_kind_answers_exactly_its_own_helper() {
    for (err, kind) in every_kind() {
        assert_eq!(err.kind(), kind, "{err:?}");
        let helpers = [
            (err.is_cancelled(), ErrorKind::Cancelled),
            (err.is_timeout(), ErrorKind::TimedOut),
            (err.is_panic(), ErrorKind::Panicked),
            (err.is_failed(), ErrorKind::Failed),
            (err.is_worker_died(), ErrorKind::WorkerDied),
            (err.is_shutdown(), ErrorKind::Shutdown),
            (err.is_broken(), ErrorKind::Broken),
            (err.is_wire(), ErrorKind::Wire),
            (err.is_group(), ErrorKind::Group),
            (err.is_refused(), ErrorKind::Refused),
            (err.is_abandoned(), ErrorKind::Abandoned),
            (err.is_interrupted(), ErrorKind::Interrupted),
        ];
        for (answer, of) in helpers {
            assert_eq!(answer, of == kind, "{kind}: is_* for {of}");
        }
    }
}

#[test]
fn display_is_one_line_for_every_kind() {
    for (err, kind) in every_kind() {
        let line = err.to_string();
        assert!(!line.is_empty(), "{kind}");
        assert!(!line.contains('\n'), "{kind}: {line:?}");
    }
}

#[test]
fn accessors_give_the_details_of_their_kind_only() {
    let cancelled = Error::cancelled(Some("enough".into()));
    assert_eq!(cancelled.cancel_message(), Some("enough"));
    assert_eq!(Error::cancelled(None).cancel_message(), None);

    let timeout = Error::timed_out(Duration::from_millis(5));
    assert_eq!(timeout.timed_out_after(), Some(Duration::from_millis(5)));

    let site = std::panic::Location::caller();
    let panic = Error::panicked(
        "boom".into(),
        Some("loader".into()),
        Some(site),
        Some("bt".into()),
    );
    let p = panic.panic().unwrap();
    assert_eq!(p.message(), "boom");
    assert_eq!(p.task(), Some("loader"));
    assert_eq!(p.site(), Some(site));
    assert_eq!(p.backtrace(), Some("bt"));
    assert_eq!(panic.backtrace(), Some("bt"));

    let died = Error::worker_died(41, Some(3), None, "square (task 3)".into());
    let w = died.worker().unwrap();
    assert_eq!((w.pid(), w.exit_code(), w.signal()), (41, Some(3), None));
    assert_eq!(w.task(), "square (task 3)");

    for (err, reason) in [
        (Error::shutdown("closed"), "closed"),
        (Error::broken("no threads"), "no threads"),
        (Error::refused("await it"), "await it"),
    ] {
        assert_eq!(err.reason(), Some(reason));
    }

    let wire = Error::wire("argument of task 3", "too long");
    let w = wire.wire_error().unwrap();
    assert_eq!((w.what(), w.detail()), ("argument of task 3", "too long"));

    let failed = Error::failed(std::io::Error::other("disk full"));
    assert_eq!(failed.get_ref().unwrap().to_string(), "disk full");
    assert_eq!(
        failed.downcast_ref::<std::io::Error>().unwrap().kind(),
        std::io::ErrorKind::Other
    );
    assert!(failed.downcast_ref::<std::fmt::Error>().is_none());
    assert!(failed.clone().into_inner().unwrap().is::<std::io::Error>());

    // Every accessor of another kind answers `None`.
    let other = Error::abandoned();
    assert!(other.cancel_message().is_none() && other.timed_out_after().is_none());
    assert!(other.panic().is_none() && other.backtrace().is_none() && other.worker().is_none());
    assert!(other.reason().is_none() && other.wire_error().is_none() && other.errors().is_none());
    assert!(other.get_ref().is_none() && other.into_inner().is_none());
}

#[test]
fn a_panic_displays_without_its_backtrace_and_the_alternate_form_adds_it() {
    let err = Error::panicked(
        "boom".into(),
        Some("loader".into()),
        None,
        Some("0: loader::run\n1: main".into()),
    );
    assert_eq!(err.to_string(), "task 'loader' panicked: boom");
    let long = format!("{err:#}");
    assert!(long.starts_with("task 'loader' panicked: boom\n"), "{long}");
    assert!(long.contains("0: loader::run\n1: main"), "{long}");
    assert!(format!("{err:?}").contains("loader::run"));
}

#[test]
fn a_group_of_three_names_the_first_in_one_line_and_lists_all_in_the_alternate_form() {
    let group = Error::group(vec![
        Error::failed(std::io::Error::other("disk full")),
        Error::panicked("boom".into(), None, None, Some("0: f".into())),
        Error::timed_out(Duration::from_secs(1)),
    ]);
    assert_eq!(group.to_string(), "3 tasks failed: first: disk full");
    let errors = group.errors().unwrap();
    assert_eq!(errors.len(), 3);
    assert!(errors[1].is_panic() && errors[2].is_timeout());
    let long = format!("{group:#}");
    assert_eq!(
        long.lines().filter(|l| l.starts_with('[')).count(),
        3,
        "{long}"
    );
    assert!(
        long.contains("[2] panicked: boom\nbacktrace:\n0: f"),
        "{long}"
    );
    // The group's source is its first error, the one `Display` names.
    let source = group.source().unwrap();
    assert_eq!(source.to_string(), "disk full");
    assert_eq!(
        Error::group(vec![Error::abandoned()])
            .to_string()
            .lines()
            .count(),
        1
    );
}

#[test]
fn a_task_group_with_three_failures_reports_all_three() {
    rt(async {
        let group = TaskGroup::new();
        // All three fail in one instant on the same worker: none can be cancelled in time.
        for name in ["a", "b", "c"] {
            group.spawn_named(name, async move {
                sleep(Duration::from_millis(5)).await;
                Err::<(), _>(std::io::Error::other(format!("{name} failed")))
            });
        }
        let err = group.join().await.unwrap_err();
        let errors = err.errors().expect("a group error");
        assert!(
            !errors.is_empty() && errors.iter().all(Error::is_failed),
            "{err:#}"
        );
        let first = errors[0].to_string();
        let n = errors.len();
        let expected = match n {
            1 => format!("1 task failed: {first}"),
            _ => format!("{n} tasks failed: first: {first}"),
        };
        assert_eq!(err.to_string(), expected);
    });
}

#[test]
fn a_clone_shares_the_error_instead_of_copying_it() {
    let group = Error::group((0..1000).map(|i| Error::refused(i.to_string())).collect());
    let copy = group.clone();
    assert!(copy.ptr_eq(&group));
    assert!(std::ptr::eq(
        copy.errors().unwrap(),
        group.errors().unwrap()
    ));
    assert!(!group.ptr_eq(&Error::group(Vec::new())));
}

#[test]
fn a_task_panic_keeps_its_name_and_site() {
    rt(async {
        let task = create_task_named("exploder", async {
            panic!("kaboom");
        });
        let line = line!() - 3;
        let err = task.await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Panicked);
        let p = err.panic().unwrap();
        assert_eq!(p.site().map(|s| s.line()), Some(line));
        assert!(!err.to_string().contains('\n'));
    });
}

#[test]
fn io_error_conversion_keeps_the_kind_mapping() {
    let timed_out: std::io::Error = Error::timed_out(Duration::from_secs(1)).into();
    assert_eq!(timed_out.kind(), std::io::ErrorKind::TimedOut);
    let cancelled: std::io::Error = Error::cancelled(None).into();
    assert_eq!(cancelled.kind(), std::io::ErrorKind::Interrupted);
    let other: std::io::Error = Error::broken("x").into();
    assert_eq!(other.kind(), std::io::ErrorKind::Other);
    let inner = other.get_ref().unwrap().downcast_ref::<Error>().unwrap();
    assert!(inner.is_broken());
}
