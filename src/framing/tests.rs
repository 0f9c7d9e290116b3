use super::*;

const MAX: usize = 8192;

fn tracker_after(parts: &[&[u8]]) -> Tracker {
    let mut t = Tracker::new(MAX);
    for p in parts {
        t.feed(p);
    }
    t
}

/// Feeds `stream` whole, then split at every position, and returns the common outcome.
fn outcome(stream: &[u8]) -> (bool, Option<Violation>) {
    let whole = tracker_after(&[stream]);
    let expected = (whole.at_boundary(), whole.violation());
    for cut in 0..=stream.len() {
        let t = tracker_after(&[&stream[..cut], &stream[cut..]]);
        assert_eq!((t.at_boundary(), t.violation()), expected, "split at {cut}");
    }
    let mut bytewise = Tracker::new(MAX);
    for b in stream {
        bytewise.feed(std::slice::from_ref(b));
    }
    assert_eq!((bytewise.at_boundary(), bytewise.violation()), expected, "byte by byte");
    expected
}

#[test]
fn content_length_with_transfer_encoding_is_a_violation_in_either_order() {
    for head in [
        "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n",
        "POST /x HTTP/1.1\r\nHost: a\r\ntransfer-encoding: chunked\r\ncontent-length: 4\r\n\r\n",
        "POST /x HTTP/1.1\nHost: a\nTRANSFER-ENCODING: gzip, chunked\nContent-Length: 0\n\n",
    ] {
        assert_eq!(
            outcome(head.as_bytes()).1,
            Some(Violation::ContentLengthWithTransferEncoding),
            "{head:?}"
        );
    }
}

#[test]
fn repeated_content_length_is_a_violation_even_when_identical() {
    for head in [
        "POST /x HTTP/1.1\r\nContent-Length: 4\r\nContent-Length: 4\r\n\r\nabcd",
        "POST /x HTTP/1.1\r\nContent-Length: 4\r\nX: y\r\ncontent-length: 5\r\n\r\nabcd",
    ] {
        assert_eq!(
            outcome(head.as_bytes()).1,
            Some(Violation::RepeatedContentLength),
            "{head:?}"
        );
    }
}

#[test]
fn a_violation_in_a_pipelined_second_request_is_seen() {
    let stream =
        b"GET /a HTTP/1.1\r\nHost: a\r\n\r\nPOST /b HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc";
    assert_eq!(outcome(stream).1, Some(Violation::RepeatedContentLength));
}

#[test]
fn content_length_bodies_are_skipped_to_the_next_head() {
    // The body contains what would be a violation if it were read as a head.
    let body = "Content-Length: 1\r\nContent-Length: 1\r\n\r\n";
    let stream = format!(
        "POST /a HTTP/1.1\r\nContent-Length: {}\r\n\r\n{body}GET /b HTTP/1.1\r\n\r\n",
        body.len()
    );
    assert_eq!(outcome(stream.as_bytes()), (true, None));
    let partial = tracker_after(&[b"POST /a HTTP/1.1\r\nContent-Length: 10\r\n\r\n12345"]);
    assert!(!partial.at_boundary());
}

#[test]
fn chunked_bodies_with_extensions_and_trailers_are_followed() {
    let stream = "POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n\
                  5 ;ext=1\r\nhello\r\nA\r\n0123456789\r\n0\r\nX-Trailer: 1\r\n\r\n\
                  GET /b HTTP/1.1\r\nHost: a\r\n\r\n";
    assert_eq!(outcome(stream.as_bytes()), (true, None));
    let unfinished = "POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n";
    assert_eq!(outcome(unfinished.as_bytes()), (false, None));
}

#[test]
fn a_head_hidden_in_a_chunked_body_is_not_read_as_a_head() {
    let hidden = "GET /x HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n";
    let stream = format!(
        "POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{hidden}\r\n0\r\n\r\n",
        hidden.len()
    );
    assert_eq!(outcome(stream.as_bytes()), (true, None));
}

#[test]
fn a_clean_keep_alive_stream_ends_at_a_boundary() {
    let stream = b"\r\nGET /a HTTP/1.1\r\nHost: a\r\n\r\nPOST /b HTTP/1.1\r\nContent-Length: 0\r\n\r\n";
    assert_eq!(outcome(stream), (true, None));
    assert!(!tracker_after(&[b"GET /a HTTP/1.1\r\nHost: a\r\n"]).at_boundary());
}

#[test]
fn what_hyper_refuses_itself_stops_the_tracker() {
    for stream in [
        "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        "POST /a HTTP/1.1\r\nContent-Length: +4\r\n\r\nabcd",
        "POST /a HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "POST /a HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
        "POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        "POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1;a\nb\r\n",
    ] {
        assert_eq!(outcome(stream.as_bytes()), (false, None), "{stream:?}");
    }
    let mut t = Tracker::new(MAX);
    t.feed(b"PRI * HTTP/2.0\r\n\r\n");
    t.feed(b"GET /a HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n");
    assert_eq!(t.violation(), None, "an HTTP/2 stream is not read as HTTP/1");
}

#[test]
fn a_head_beyond_the_cap_stops_the_tracker() {
    let mut t = Tracker::new(64);
    t.feed(b"GET /a HTTP/1.1\r\n");
    t.feed(&[b'x'; 100]);
    t.feed(b"\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n");
    assert!(!t.at_boundary());
    assert_eq!(t.violation(), None);
}

#[test]
fn huge_lengths_do_not_overflow() {
    let stream = "POST /a HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n";
    assert_eq!(outcome(stream.as_bytes()), (false, None));
    let chunk = "POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffffff\r\n";
    assert_eq!(outcome(chunk.as_bytes()), (false, None));
}

mod props {
    use super::*;
    use proptest::prelude::*;

    /// One well-formed request: a head, then a body framed by Content-Length or chunks.
    fn request() -> impl Strategy<Value = Vec<u8>> {
        let body = proptest::collection::vec(any::<u8>(), 0..64);
        let chunks = proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..20), 0..4);
        prop_oneof![
            Just(b"GET /execute/Email/list_pops HTTP/1.1\r\nHost: a\r\n\r\n".to_vec()),
            body.prop_map(|b| {
                let mut r = format!("POST /x HTTP/1.1\r\nContent-Length: {}\r\n\r\n", b.len()).into_bytes();
                r.extend(b);
                r
            }),
            chunks.prop_map(|cs| {
                let mut r = b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
                for c in cs {
                    r.extend(format!("{:x}\r\n", c.len()).into_bytes());
                    r.extend(c);
                    r.extend(b"\r\n");
                }
                r.extend(b"0\r\n\r\n");
                r
            }),
        ]
    }

    proptest! {
        /// Any run of well-formed requests, cut anywhere, ends at a boundary with no violation.
        #[test]
        fn well_formed_streams_end_at_a_boundary(
            requests in proptest::collection::vec(request(), 1..5),
            cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..6),
        ) {
            let stream = requests.concat();
            let mut at: Vec<usize> = cuts.iter().map(|i| i.index(stream.len() + 1)).collect();
            at.sort_unstable();
            let mut t = Tracker::new(MAX);
            let mut from = 0;
            for cut in at.into_iter().chain([stream.len()]) {
                t.feed(&stream[from..cut]);
                from = cut;
            }
            prop_assert!(t.at_boundary());
            prop_assert_eq!(t.violation(), None);
        }

        /// Arbitrary bytes never panic, and where they are cut does not change the outcome.
        #[test]
        fn arbitrary_bytes_are_split_invariant(bytes in proptest::collection::vec(any::<u8>(), 0..200), cut in any::<prop::sample::Index>()) {
            let cut = cut.index(bytes.len() + 1);
            let whole = tracker_after(&[&bytes]);
            let split = tracker_after(&[&bytes[..cut], &bytes[cut..]]);
            prop_assert_eq!((whole.at_boundary(), whole.violation()), (split.at_boundary(), split.violation()));
        }
    }
}
