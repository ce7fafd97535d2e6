//! Transactions with a manual clock, where redis-server 7.0 cannot be the reference
//! (`CLIENT NO-TOUCH` is 7.2's).

use commands::testing::{bulk, simple, Harness};
use protocol::Frame;

const T0: i64 = 1_700_000_000_000;

#[test]
fn client_no_touch_inside_a_transaction_applies_to_the_commands_after_it() {
    let mut h = Harness::new(T0);
    assert_eq!(h.run(&["SET", "a", "1"]), simple("OK"));
    assert_eq!(h.run(&["SET", "b", "1"]), simple("OK"));
    h.now_ms += 60_000;
    for cmd in
        [&["MULTI"][..], &["CLIENT", "NO-TOUCH", "ON"], &["GET", "a"], &["CLIENT", "NO-TOUCH", "OFF"], &["GET", "b"]]
    {
        h.run(cmd);
    }
    assert_eq!(h.run(&["EXEC"]), Frame::Array(vec![simple("OK"), bulk("1"), simple("OK"), bulk("1")]));
    let idle = |h: &mut Harness, k: &str| match h.run(&["OBJECT", "IDLETIME", k]) {
        Frame::Integer(n) => n,
        other => panic!("OBJECT IDLETIME: {other:?}"),
    };
    assert!(idle(&mut h, "a") >= 59, "GET under NO-TOUCH refreshed the access time");
    assert!(idle(&mut h, "b") <= 1, "GET after NO-TOUCH OFF did not refresh the access time");
}
