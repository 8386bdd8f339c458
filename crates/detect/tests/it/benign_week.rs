//! The benign simulated week, small: a fortnight of ordinary mail use by
//! about sixty people, where any alert is a false positive. The full
//! measurement is the `benign_week` example; this pins down what must never
//! happen on benign traffic, whatever the tuning.

#[path = "../../examples/benign_week/world.rs"]
pub mod world;

use stormproof_detect::Severity;

use crate::support::TestStore;
use world::{World, WorldSpec};

#[test]
fn a_benign_fortnight_raises_no_forgery_alert() {
    let mut world = World::new(&WorldSpec::small(3, 60));
    let store = TestStore::new();
    let mut engine = store.engine(&world.detect_config());
    let mut events = 0;
    let mut alerts = Vec::new();
    for day in 0..=14 {
        let batch = if day < 14 {
            world.next_day()
        } else {
            world.finish()
        };
        events += batch.len();
        for event in &batch {
            alerts.extend(engine.process(event));
        }
    }
    assert!(
        events > 50_000,
        "a fortnight of {} users is busier than {events} events",
        world.users()
    );
    // Critical means "a signing key is in someone else's hands": never on
    // benign traffic. Nor may expired tokens from an office add up to a burst.
    let forgery: Vec<_> = alerts
        .iter()
        .filter(|a| a.detector == "token_forgery" || a.severity == Severity::Critical)
        .collect();
    assert!(forgery.is_empty(), "{forgery:#?}");
}

#[test]
fn the_simulation_is_deterministic() {
    let first = |seed| World::new(&WorldSpec::small(seed, 20)).next_day();
    assert_eq!(first(5), first(5));
    assert_ne!(first(5), first(6));
}
