"""Files added through the chat: only bytes this server received as uploads, kept by name.

Upstream note (gradio 6.31, for a report): `processing_utils._check_allowed`, which refuses a
`FileData.path` outside Gradio's upload folder, returns early while `blocks.has_launched`
is False, and only `Blocks.launch()` sets that flag; `gr.mount_gradio_app` never does. So on
a mounted app any client can name a server path in a FileData (`{"path": "/etc/x.txt",
"meta": {"_type": "gradio.FileData"}}`): Gradio copies that file into its cache and hands
the copy to the event handler as if it had been uploaded. We set the flag after mounting
(it is read nowhere else in 6.31) and, so as not to depend on it, the handler accepts only
paths that Gradio's `/upload` route itself recorded (`Blocks.upload_file_set`) inside its
upload folder; a forged path reaches the handler as a fresh copy, which is in neither.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Collection
from pathlib import Path

from index.sources import SUPPORTED_SUFFIXES, SourceError, read_article


def received_uploads(files: list[str], recorded: Collection[str], upload_folder: str
                     ) -> tuple[list[str], list[str]]:
    """(the files this server received as uploads, a line for each other one)."""
    folder = os.path.realpath(upload_folder)
    uploads = {os.path.realpath(p) for p in recorded}
    received, refused = [], []
    for raw in files:
        path = os.path.realpath(raw)
        if path in uploads and os.path.commonpath([folder, path]) == folder:
            received.append(raw)
        else:
            refused.append(f"skipped {Path(raw).name}: not a file uploaded to this server")
    return received, refused


def keep_uploads(files: list[str], uploads: Path, max_bytes: int) -> tuple[list[Path], list[str]]:
    """(copies in `uploads` of the files that read as articles, a line for each other one).

    A copy takes the upload's base name, so a `../` in a name cannot leave the folder, and
    the same name again updates that article. A file that cannot be indexed is refused
    before it is copied: it never replaces a good upload of the same name.
    """
    uploads.mkdir(parents=True, exist_ok=True)
    saved, refused = [], []
    for raw in files:
        name = Path(raw).name
        if name.startswith(".") or Path(name).suffix.lower() not in SUPPORTED_SUFFIXES:
            refused.append(f"skipped {name}: not a .txt, .md or .html file")
            continue
        try:
            read_article(Path(raw), max_bytes)
        except SourceError as err:
            refused.append(f"skipped {name}: {err.reason}")
            continue
        target = uploads / name
        shutil.copyfile(raw, target)
        saved.append(target)
    return saved, refused
