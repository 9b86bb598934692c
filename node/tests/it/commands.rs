use geowallet_client::{Account, CreditKind, DebitKind, Error, JournalCursor, Tx};

use crate::cluster::TestCluster;

fn far_future_ns() -> u64 {
    Tx::new("t").created_at_ns + 3_600_000_000_000
}

// Every ledger command works over gRPC through the client, and every reply carries the new balance.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_command_over_grpc() {
    let tc = TestCluster::start(100_000).await;
    let c = tc.client();
    let (alice, bob) = (Account::new(1, "EUR"), Account::new(2, "EUR"));
    assert_eq!(
        c.open(&Tx::new("open-a"), &alice)
            .await
            .unwrap()
            .balance
            .available,
        0
    );
    c.open(&Tx::new("open-b"), &bob).await.unwrap();
    let r = c
        .credit(&Tx::new("dep-1"), &alice, 10_000, CreditKind::Deposit)
        .await
        .unwrap();
    assert_eq!((r.balance.available, r.balance.held), (10_000, 0));
    assert!(r.log_index > 0);
    assert_eq!(
        c.debit(&Tx::new("bet-1"), &alice, 1_500, DebitKind::Bet)
            .await
            .unwrap()
            .balance
            .available,
        8_500
    );
    assert_eq!(
        c.credit(&Tx::new("win-1"), &alice, 500, CreditKind::Win)
            .await
            .unwrap()
            .balance
            .available,
        9_000
    );
    let t = c
        .transfer(&Tx::new("tr-1"), &alice, &bob, 1_000)
        .await
        .unwrap();
    assert_eq!(t.balance.available, 8_000);
    assert_eq!(t.counterpart.unwrap().available, 1_000);
    let h = c
        .hold(&Tx::new("hold-1"), &alice, "wd-1", 3_000, far_future_ns())
        .await
        .unwrap();
    assert_eq!((h.balance.available, h.balance.held), (5_000, 3_000));
    let cap = c
        .capture(
            &Tx::new("cap-1"),
            &alice,
            "wd-1",
            Some(1_000),
            DebitKind::Withdrawal,
        )
        .await
        .unwrap();
    assert_eq!((cap.balance.available, cap.balance.held), (5_000, 2_000));
    let rel = c.release(&Tx::new("rel-1"), &alice, "wd-1").await.unwrap();
    assert_eq!((rel.balance.available, rel.balance.held), (7_000, 0));
    c.hold(&Tx::new("hold-2"), &alice, "wd-2", 2_000, far_future_ns())
        .await
        .unwrap();
    let full = c
        .capture(
            &Tx::new("cap-2"),
            &alice,
            "wd-2",
            None,
            DebitKind::Withdrawal,
        )
        .await
        .unwrap();
    assert_eq!((full.balance.available, full.balance.held), (5_000, 0));
    c.freeze(&Tx::new("frz-1"), &alice).await.unwrap();
    assert_eq!(
        c.debit(&Tx::new("bet-frozen"), &alice, 1, DebitKind::Bet)
            .await
            .unwrap_err(),
        Error::Frozen
    );
    assert_eq!(
        c.credit(&Tx::new("dep-frozen"), &alice, 1, CreditKind::Deposit)
            .await
            .unwrap()
            .balance
            .available,
        5_001
    );
    c.unfreeze(&Tx::new("ufz-1"), &alice).await.unwrap();
    assert_eq!(
        c.debit(&Tx::new("bet-2"), &alice, 1, DebitKind::Bet)
            .await
            .unwrap()
            .balance
            .available,
        5_000
    );
    let b = c.balance(&alice).await.unwrap();
    assert_eq!((b.available, b.held), (5_000, 0));
    assert_eq!(c.balance(&bob).await.unwrap().available, 1_000);

    let page = c.journal(&alice, JournalCursor::START, 100).await.unwrap();
    let kinds: Vec<&str> = page.entries.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds.first(), Some(&"open"));
    assert!(
        kinds.contains(&"transfer_out")
            && kinds.contains(&"capture:withdrawal")
            && kinds.contains(&"release"),
        "{kinds:?}"
    );
    assert_eq!(page.entries.last().unwrap().balance.available, 5_000);
    let seqs: Vec<u64> = page.entries.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=page.entries.len() as u64).collect::<Vec<_>>());
    assert!(page.entries.iter().all(|e| e.group == 1 && e.log_index > 0));
    let small = c.journal(&alice, JournalCursor::START, 2).await.unwrap();
    assert_eq!(small.entries.len(), 2);
    assert_eq!(small.next, Some(JournalCursor::Seq(3)));
    let rest = c.journal(&alice, small.next.unwrap(), 100).await.unwrap();
    assert_eq!(small.entries.len() + rest.entries.len(), page.entries.len());
    // The older cursor (log index, position) still pages to the same lines.
    let (log_index, position) = small.next_at.unwrap();
    let cursor = JournalCursor::Position {
        log_index,
        position,
    };
    let by_position = c.journal(&alice, cursor, 100).await.unwrap();
    assert_eq!(by_position.entries, rest.entries);

    let carol = Account::new(3, "EUR");
    let audit = c
        .audit(&[alice.clone(), bob.clone(), carol.clone()])
        .await
        .unwrap();
    let balances: Vec<_> = audit
        .balances
        .iter()
        .map(|(a, b)| (a.clone(), b.map(|b| (b.available, b.held))))
        .collect();
    assert_eq!(
        balances,
        vec![
            (alice, Some((5_000, 0))),
            (bob, Some((1_000, 0))),
            (carol, None)
        ]
    );
    let eur = audit.totals["EUR"];
    assert_eq!((eur.players, eur.system), (6_000, -6_000));
    assert!(audit.read_index >= r.log_index);
}

// Re-sending a transaction id returns the first result and changes nothing; reusing it for another command is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_tx_ids_apply_once() {
    let tc = TestCluster::start(100_000).await;
    let c = tc.client();
    let a = Account::new(7, "USD");
    c.open(&Tx::new("dup-open"), &a).await.unwrap();
    let tx = Tx::new("dup-dep");
    let first = c.credit(&tx, &a, 700, CreditKind::Deposit).await.unwrap();
    for _ in 0..5 {
        assert_eq!(
            c.credit(&tx, &a, 700, CreditKind::Deposit).await.unwrap(),
            first
        );
    }
    assert_eq!(c.balance(&a).await.unwrap().available, 700);
    let refused_tx = Tx::new("dup-overdraw");
    let err = c
        .debit(&refused_tx, &a, 10_000, DebitKind::Bet)
        .await
        .unwrap_err();
    assert_eq!(
        err,
        Error::InsufficientFunds {
            available: 700,
            requested: 10_000
        }
    );
    c.credit(&Tx::new("dup-dep-2"), &a, 20_000, CreditKind::Deposit)
        .await
        .unwrap();
    // The stored first result (a refusal) is returned again, even though funds now suffice.
    assert_eq!(
        c.debit(&refused_tx, &a, 10_000, DebitKind::Bet)
            .await
            .unwrap_err(),
        err
    );
    assert_eq!(
        c.debit(&tx, &a, 1, DebitKind::Bet).await.unwrap_err(),
        Error::TxIdConflict
    );
    assert_eq!(c.balance(&a).await.unwrap().available, 20_700);
    let page = c.journal(&a, JournalCursor::START, 100).await.unwrap();
    assert_eq!(
        page.entries.iter().filter(|e| e.tx_id == "dup-dep").count(),
        1
    );
}

// Every refusal comes back typed and changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_refusal_is_typed_and_changes_nothing() {
    let tc = TestCluster::start(100_000).await;
    let c = tc.client();
    let (a, b, usd) = (
        Account::new(10, "EUR"),
        Account::new(11, "EUR"),
        Account::new(12, "USD"),
    );
    for (i, acc) in [&a, &b, &usd].into_iter().enumerate() {
        c.open(&Tx::new(format!("r-open-{i}")), acc).await.unwrap();
    }
    c.credit(&Tx::new("r-dep"), &a, 1_000, CreditKind::Deposit)
        .await
        .unwrap();
    let ghost = Account::new(99, "EUR");
    let cases: Vec<(Result<_, Error>, &str)> = vec![
        (
            c.debit(&Tx::new("r1"), &ghost, 1, DebitKind::Bet).await,
            "unknown_account",
        ),
        (c.open(&Tx::new("r2"), &a).await, "account_exists"),
        (
            c.transfer(&Tx::new("r3"), &a, &usd, 1).await,
            "currency_mismatch",
        ),
        (c.transfer(&Tx::new("r4"), &a, &a, 1).await, "same_account"),
        (
            c.credit(&Tx::new("r5"), &a, 0, CreditKind::Deposit).await,
            "zero_amount",
        ),
        (
            c.credit(&Tx::new("r6"), &a, u64::MAX, CreditKind::Deposit)
                .await,
            "overflow",
        ),
        (
            c.debit(&Tx::new("r7"), &a, 5_000, DebitKind::Bet).await,
            "insufficient_funds",
        ),
        (
            c.capture(&Tx::new("r8"), &a, "nope", None, DebitKind::Withdrawal)
                .await,
            "unknown_hold",
        ),
        (
            c.hold(&Tx::new("r9"), &a, "past", 10, 1).await,
            "hold_expired",
        ),
        (
            c.debit(&Tx::with_created_at("r10", 1), &a, 1, DebitKind::Bet)
                .await,
            "tx_id_expired",
        ),
        (
            c.debit(
                &Tx::with_created_at("r11", u64::MAX / 2),
                &a,
                1,
                DebitKind::Bet,
            )
            .await,
            "tx_id_from_future",
        ),
        (
            c.debit(&Tx::new(""), &a, 1, DebitKind::Bet).await,
            "invalid_argument",
        ),
        (
            c.debit(&Tx::new("r12"), &Account::new(1, "eu!"), 1, DebitKind::Bet)
                .await,
            "invalid_argument",
        ),
    ];
    for (result, code) in cases {
        let err = result.expect_err(code);
        assert_eq!(err.code(), code, "{err}");
        // Too old to tell is an unknown outcome, never "changed nothing".
        assert_eq!(err.is_refusal(), code != "tx_id_expired", "{err}");
    }
    c.hold(&Tx::new("r-hold"), &a, "h1", 300, far_future_ns())
        .await
        .unwrap();
    assert_eq!(
        c.hold(&Tx::new("r13"), &a, "h1", 1, far_future_ns())
            .await
            .unwrap_err()
            .code(),
        "hold_exists"
    );
    let over = c
        .capture(&Tx::new("r14"), &a, "h1", Some(301), DebitKind::Withdrawal)
        .await
        .unwrap_err();
    assert_eq!(
        over,
        Error::OverCapture {
            held: 300,
            requested: 301
        }
    );
    c.release(&Tx::new("r-rel"), &a, "h1").await.unwrap();
    assert_eq!(
        c.release(&Tx::new("r15"), &a, "h1")
            .await
            .unwrap_err()
            .code(),
        "hold_closed"
    );
    c.freeze(&Tx::new("r-frz"), &b).await.unwrap();
    assert_eq!(
        c.transfer(&Tx::new("r16"), &b, &a, 1).await.unwrap_err(),
        Error::Frozen
    );
    let bal = c.balance(&a).await.unwrap();
    assert_eq!((bal.available, bal.held), (1_000, 0));
    assert_eq!(c.balance(&b).await.unwrap().available, 0);
    assert_eq!(
        c.balance(&ghost).await.unwrap_err().code(),
        "unknown_account"
    );
}
