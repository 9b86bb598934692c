//! Wallet move steps as Raft entries, through the state machine over RocksDB.

use geowallet_ledger::{
    AccountId, Amount, Command, CreditKind, Currency, LedgerConfig, MoveCommand, MoveId, PlayerId,
    PlayerMove, Request, SystemAccount, TxId,
};
use geowallet_raft::{LedgerStateMachine, Proposal, TypeConfig};
use geowallet_storage::{Db, GroupId};
use openraft::EntryPayload;
use openraft::alias::EntryOf;
use openraft::storage::RaftStateMachine;

const T0: u64 = 1_800_000_000_000_000_000;

fn entry(index: u64, proposal: Proposal) -> EntryOf<TypeConfig> {
    EntryOf::<TypeConfig> {
        log_id: openraft::testing::log_id::<TypeConfig>(1, 1, index),
        payload: EntryPayload::Normal(proposal),
    }
}

// Proves an entry carrying a move step is applied by the state machine
// (not taken for an empty ledger entry): after a `Leave` the player's rows
// are gone, its marker stored, its money in transit, and the books balance.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_move_step_entry_is_applied_by_the_state_machine() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(&dir.path().join("db")).unwrap();
    let store = db.state_store(GroupId(1));
    let mut sm = LedgerStateMachine::open(
        store.clone(),
        dir.path().join("snapshots"),
        LedgerConfig::default(),
    )
    .unwrap();
    let account = AccountId {
        player: PlayerId(7),
        currency: Currency::parse("EUR").unwrap(),
    };
    let request = |tx: &str, command| Request {
        tx: TxId::new(tx).unwrap(),
        created_at_ns: T0,
        command,
    };
    let fund = vec![
        request("open", Command::OpenAccount { account }),
        request(
            "deposit",
            Command::Credit {
                account,
                amount: Amount(250),
                kind: CreditKind::Deposit,
            },
        ),
    ];
    let leave = MoveCommand::Leave {
        player: account.player,
        id: MoveId {
            from_epoch: 1,
            attempt: 0,
            from_group: 1,
        },
        to_group: 2,
    };
    let entries = [
        entry(1, Proposal::ledger(T0, fund)),
        entry(2, Proposal::wallet_move(T0 + 1, leave)),
    ];
    sm.apply(futures::stream::iter(entries.map(|e| Ok((e, None)))))
        .await
        .unwrap();
    let rows = store.dump().unwrap();
    assert!(rows.accounts.is_empty(), "{:?}", rows.accounts);
    assert!(matches!(
        rows.players.get(&account.player),
        Some(PlayerMove::Leaving { to_group: 2, .. })
    ));
    assert_eq!(
        rows.system.get(&(account.currency, SystemAccount::Transit)),
        Some(&250)
    );
    rows.check_invariants();
}
