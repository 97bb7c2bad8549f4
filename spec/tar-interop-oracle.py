# Python's tarfile reading of tar archives: the oracle of spec/tar-interop.spec.ts.
#
# usage: python3 tar-interop-oracle.py MAX_HOLES ARCHIVE...
# Prints one JSON object: for each archive, the members in the order tarfile
# reads them and the error that stopped the reading, if any. A member has its
# name (a str decoded as UTF-8 with surrogateescape, so each byte that is not
# UTF-8 is U+DC00 + the byte) and the name's bytes in hex, its type flag, its
# size, the bytes of holes a sparse member has, and for a regular file the
# SHA-256 of its contents as extractfile() gives them (a sparse file rebuilt).
# A regular file that could not be read whole has no sha256 (the error says
# why); one with more than MAX_HOLES bytes of holes is not read ("unread").
import hashlib
import json
import sys
import tarfile


def members_of(path, max_holes):
    members = []
    try:
        with tarfile.open(path, "r:", encoding="utf-8", errors="surrogateescape") as archive:
            while (member := archive.next()) is not None:
                holes = member.size - sum(size for _, size in member.sparse) if member.sparse else 0
                entry = {
                    "name": member.name,
                    "bytes": member.name.encode("utf-8", "surrogateescape").hex(),
                    "type": member.type.decode("latin1"),
                    "size": member.size,
                    "holes": holes,
                }
                members.append(entry)
                if not member.isreg():
                    continue
                if holes > max_holes:
                    entry["unread"] = True
                    continue
                digest = hashlib.sha256()
                with archive.extractfile(member) as body:
                    while chunk := body.read(1 << 20):
                        digest.update(chunk)
                entry["sha256"] = digest.hexdigest()
    except Exception as err:  # every failure is an answer here: its class and message
        return {"members": members, "error": f"{type(err).__name__}: {err}"}
    return {"members": members, "error": None}


max_holes = int(sys.argv[1])
json.dump({path: members_of(path, max_holes) for path in sys.argv[2:]}, sys.stdout)
