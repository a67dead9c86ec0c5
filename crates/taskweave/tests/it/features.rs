//! The facade's cargo features: each reaches what it names, and debug mode without its feature
//! is a clear error rather than a silent no-op.

#[cfg(feature = "progress")]
#[test]
fn progress_feature_reaches_the_progress_bar() {
    let pool = taskweave::ThreadPoolExecutor::new();
    let options = taskweave::MapOptions::new().progress_bar();
    let squares = pool
        .map_with(|x: u64| x * x, 1..=4, options)
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    assert_eq!(squares, [1, 4, 9, 16]);
    pool.shutdown(true, false);
}

#[cfg(feature = "debug")]
#[test]
fn debug_feature_reaches_debug_mode() {
    taskweave::debug::enable_on_request();
    let observer = taskweave::debug::Debug::new().build();
    let rt = taskweave::Runtime::builder()
        .observer(observer.clone())
        .build()
        .unwrap();
    let out = rt.run(async { taskweave::create_task(async { 5 }).await });
    assert_eq!(out.unwrap().unwrap(), 5);
    assert!(taskweave::Runtime::builder().debug(true).build().is_ok());
}

#[cfg(not(feature = "debug"))]
#[test]
fn debug_mode_without_the_feature_names_the_feature() {
    match taskweave::Runtime::builder().debug(true).build() {
        Err(e) if e.is_refused() => {
            let reason = e.reason().unwrap_or_default();
            assert!(reason.contains("`debug` feature"), "{reason}");
        }
        other => panic!("expected Error::Refused naming the feature, got {other:?}"),
    }
}
