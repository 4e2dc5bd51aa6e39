"""`asr shard`: write a manifest's utterances (audio, or stored features) into tar shards.

    asr shard MANIFEST OUT_DIR [--features STORE_DIR] [--max-count N] [--max-mb M] [--shuffle]
"""

from __future__ import annotations


def cmd_shard(args) -> int:
    from asr.data.shard_writer import write_shards
    index = write_shards(args.manifest, args.out_dir, features_store=args.features,
                         max_count=args.max_count, max_size=int(args.max_mb * 2**20),
                         shuffle=args.shuffle, seed=args.seed)
    print(f"{args.out_dir}: {index['samples']} {index['kind']} samples in {len(index['shards'])} "
          f"shards, {index['hours']} h, {index['skipped']} skipped")
    return 0


def add_commands(sub, stage) -> None:
    p = sub.add_parser("shard", help="write a manifest into WebDataset tar shards for streaming")
    p.add_argument("manifest", help="manifest (JSONL) of the utterances")
    p.add_argument("out_dir", help="folder for shard-NNNNNN.tar and shards.json")
    p.add_argument("--features", metavar="STORE_DIR",
                   help="store this feature store's features (.npy) instead of the audio")
    p.add_argument("--max-count", type=int, default=1000, help="samples per shard (default 1000)")
    p.add_argument("--max-mb", type=float, default=256, help="MiB per shard (default 256)")
    p.add_argument("--shuffle", action="store_true",
                   help="write in a seeded random order (for manifests sorted by speaker or length)")
    p.add_argument("--seed", type=int, default=0, help="seed of --shuffle (default 0)")
    p.set_defaults(func=cmd_shard)
