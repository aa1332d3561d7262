//! The polling state, on a socket pair (Redis's wait) and on a tokio runtime (PostgreSQL's).

#[cfg(all(unix, feature = "redis"))]
mod socket {
    use std::io::Write;
    use std::os::fd::AsRawFd;
    use std::os::unix::net::UnixStream;

    use super::super::*;

    #[test]
    fn an_answer_at_hand_keeps_the_connection_polling() {
        let (mut server, client) = UnixStream::pair().expect("pair");
        let mut spin = Spin::default();
        server.write_all(b"+OK\r\n").expect("write");
        for _ in 0..10 {
            spin.wait(client.as_raw_fd());
        }
        assert_eq!((spin.misses, spin.rest), (0, 0));
    }

    #[test]
    fn answers_later_than_the_window_make_it_rest_then_try_again() {
        let (mut server, client) = UnixStream::pair().expect("pair");
        let mut spin = Spin::default();
        for missed in 1..MISSES {
            spin.wait(client.as_raw_fd());
            assert_eq!((spin.misses, spin.rest), (missed, 0));
        }
        spin.wait(client.as_raw_fd());
        assert_eq!((spin.misses, spin.rest), (0, REST));
        // Resting: no poll, whatever the socket holds.
        server.write_all(b"+OK\r\n").expect("write");
        for left in (0..REST).rev() {
            spin.wait(client.as_raw_fd());
            assert_eq!((spin.misses, spin.rest), (0, left));
        }
        // Then it polls again, and an answer at hand counts.
        spin.wait(client.as_raw_fd());
        assert_eq!((spin.misses, spin.rest), (0, 0));
    }

    #[test]
    fn a_hung_up_socket_ends_the_poll_at_once() {
        let (server, client) = UnixStream::pair().expect("pair");
        drop(server);
        assert!(readable_within(
            client.as_raw_fd(),
            Duration::from_secs(3600)
        ));
    }

    #[test]
    fn no_poll_for_a_call_made_for_another_thread() {
        let (_server, client) = UnixStream::pair().expect("pair");
        let mut spin = Spin::default();
        elsewhere(|| {
            for _ in 0..2 * MISSES {
                spin.wait(client.as_raw_fd());
            }
        });
        assert_eq!((spin.misses, spin.rest), (0, 0));
        spin.wait(client.as_raw_fd());
        assert_eq!((spin.misses, spin.rest), (1, 0));
    }
}

#[cfg(feature = "postgres")]
mod runtime {
    use std::time::Duration;

    use super::super::*;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
    }

    fn state() -> (u8, u8) {
        let s = ON_RUNTIME.with(Cell::get);
        (s.misses, s.rest)
    }

    #[test]
    fn a_future_answered_within_the_window_keeps_polling_and_gives_its_answer() {
        let rt = runtime();
        ON_RUNTIME.with(|s| s.set(Spin { misses: 2, rest: 0 }));
        // Pending once, then ready: an answer that came while the thread polled.
        let v = rt.block_on(polled(async {
            tokio::task::yield_now().await;
            7
        }));
        assert_eq!((v, state()), (7, (0, 0)));
        // Ready at once: no wait, nothing counted.
        ON_RUNTIME.with(|s| s.set(Spin { misses: 2, rest: 0 }));
        assert_eq!(rt.block_on(polled(async { 8 })), 8);
        assert_eq!(state(), (2, 0));
    }

    #[test]
    fn futures_longer_than_the_window_make_it_rest_and_still_finish() {
        let rt = runtime();
        ON_RUNTIME.with(|s| s.set(Spin::default()));
        let long = || async {
            tokio::time::sleep(Duration::from_millis(2)).await;
            "done"
        };
        for missed in 1..MISSES {
            assert_eq!(rt.block_on(polled(long())), "done");
            assert_eq!(state(), (missed, 0));
        }
        assert_eq!(rt.block_on(polled(long())), "done");
        assert_eq!(state(), (0, REST));
        assert_eq!(rt.block_on(polled(long())), "done");
        assert_eq!(state(), (0, REST - 1));
    }

    #[test]
    fn no_polling_on_a_thread_that_waits_for_another() {
        let rt = runtime();
        ON_RUNTIME.with(|s| s.set(Spin::default()));
        let out = elsewhere(|| {
            rt.block_on(polled(async {
                tokio::time::sleep(Duration::from_millis(2)).await;
                1
            }))
        });
        assert_eq!((out, state()), (1, (0, 0)));
    }
}

#[test]
fn a_panic_in_a_call_made_for_another_thread_leaves_the_thread_polling_again() {
    use super::*;
    let caught = std::panic::catch_unwind(|| elsewhere(|| panic!("the call failed")));
    assert!(caught.is_err());
    assert!(!ELSEWHERE.with(Cell::get), "the flag put back");
}
