//! `Config` read from and written to a file (feature `serde`): durations
//! with units, `"none"` for optional values, defaults for missing keys,
//! errors for unknown keys and bad values, and validation left to `build`.

use std::time::Duration;

use stormpool::admission::{CodelConfig, DeadlineAware};
use stormpool::sim::{SimConfig, SimManager};
use stormpool::{Config, ConfigError, Pool};

fn read(text: &str) -> Result<Config, toml::de::Error> {
    toml::from_str(text)
}

#[test]
fn an_empty_file_is_the_default() {
    assert_eq!(read("").unwrap(), Config::default());
}

#[test]
fn every_kind_of_value() {
    let config = read(
        r#"
        name = "api"
        max_size = 16
        min_idle = 2
        acquire_timeout = "1s"
        connect_timeout = 2500
        check_interval = "0s"
        idle_timeout = "none"
        max_lifetime = "1h30min"
        max_hold = "30s"
        leak_threshold = "250ms"
        max_in_flight_per_key = 4
        max_queued_per_key = "none"
        jitter_seed = 7
        propagate_deadline = false
        deadline_aware = { min_remaining = "20ms" }
        codel = { target = "10ms" }
        "#,
    )
    .unwrap();
    let mut expected = Config::default();
    expected.name = "api".to_owned();
    expected.max_size = 16;
    expected.min_idle = 2;
    expected.acquire_timeout = Duration::from_secs(1);
    expected.connect_timeout = Duration::from_millis(2500);
    expected.check_interval = Duration::ZERO;
    expected.idle_timeout = None;
    expected.max_lifetime = Some(Duration::from_secs(5400));
    expected.max_hold = Some(Duration::from_secs(30));
    expected.leak_threshold = Some(Duration::from_millis(250));
    expected.max_in_flight_per_key = Some(4);
    expected.max_queued_per_key = None;
    expected.jitter_seed = Some(7);
    expected.propagate_deadline = false;
    expected.deadline_aware = DeadlineAware::MinRemaining(Duration::from_millis(20));
    expected.codel = Some(CodelConfig {
        target: Duration::from_millis(10),
        interval: CodelConfig::default().interval,
    });
    assert_eq!(config, expected);
}

#[test]
fn the_other_enum_and_option_spellings() {
    let config = read("codel = \"none\"\ndeadline_aware = \"learned_hold\"").unwrap();
    assert_eq!(config.codel, None);
    assert_eq!(config.deadline_aware, DeadlineAware::LearnedHold);
    assert_eq!(
        read("deadline_aware = \"off\"").unwrap().deadline_aware,
        DeadlineAware::Off
    );

    // JSON's null is "none" too.
    let config: Config =
        serde_json::from_str(r#"{"max_hold": null, "idle_timeout": null}"#).unwrap();
    assert_eq!(config.max_hold, None);
    assert_eq!(config.idle_timeout, None);
}

#[test]
fn written_and_read_back() {
    let mut config = Config::default();
    config.name = "written".to_owned();
    config.max_hold = Some(Duration::from_secs(30));
    config.max_queued_per_key = Some(8);
    config.deadline_aware = DeadlineAware::MinRemaining(Duration::from_millis(15));
    config.connect_backoff_min = Duration::from_micros(1500);
    let text = toml::to_string(&config).unwrap();
    assert!(text.contains("acquire_timeout = \"5s\""), "{text}");
    assert!(text.contains("max_lifetime = \"30min\""), "{text}");
    assert!(text.contains("leak_threshold = \"none\""), "{text}");
    assert!(text.contains("connect_backoff_min = \"1500us\""), "{text}");
    assert_eq!(read(&text).unwrap(), config, "{text}");

    let mut off = Config::default();
    off.codel = None;
    off.deadline_aware = DeadlineAware::LearnedHold;
    let text = toml::to_string(&off).unwrap();
    assert_eq!(read(&text).unwrap(), off, "{text}");
}

#[test]
fn errors_name_the_key_and_what_it_takes() {
    let cases = [
        ("max_sise = 16", "unknown field `max_sise`"),
        ("acquire_timeout = \"500\"", "a duration with its unit"),
        ("acquire_timeout = \"1.5s\"", "a duration with its unit"),
        ("acquire_timeout = -5", "a duration with its unit"),
        ("acquire_timeout = true", "a duration with its unit"),
        ("max_size = \"many\"", "max_size"),
        ("max_hold = \"forever\"", "a duration with its unit"),
        (
            "codel = { target = \"5ms\", intervall = \"1s\" }",
            "unknown field `intervall`",
        ),
        (
            "deadline_aware = \"sometimes\"",
            "unknown variant `sometimes`",
        ),
    ];
    for (text, expected) in cases {
        let error = read(text).expect_err(text).to_string();
        assert!(error.contains(expected), "{text}: {error}");
    }
}

#[test]
fn the_builder_validates_what_was_read() {
    let config = read("max_size = 0").unwrap();
    let error = Pool::builder(SimManager::new(SimConfig::default()))
        .config(config)
        .build()
        .unwrap_err();
    assert_eq!(error, ConfigError::Zero { field: "max_size" });

    let config = read("max_hold = \"0s\"").unwrap();
    let error = Pool::builder(SimManager::new(SimConfig::default()))
        .config(config)
        .build()
        .unwrap_err();
    assert_eq!(error.field(), "max_hold");
}

#[tokio::test(start_paused = true)]
async fn a_file_builds_a_working_pool() {
    let config = read("name = \"from-file\"\nmax_size = 2\nacquire_timeout = \"100ms\"").unwrap();
    let pool = Pool::builder(SimManager::new(SimConfig::default()))
        .config(config)
        .build()
        .unwrap();
    let mut conn = pool.get().await.unwrap();
    conn.query().await.unwrap();
    assert_eq!(pool.config().name, "from-file");
    assert_eq!(pool.status().max_size, 2);
}
