"""A small driver of the DLS routes for the server tests (in-process apps)."""

from __future__ import annotations

from typing import Any

import httpx

DLS = "/api/dls"


class Dls:
    """DLS users of one tenant of an in-process app, and calls made as each of them."""

    def __init__(self, api: Any, *users: str) -> None:
        self.api = api
        self.keys: dict[str, str] = {}
        self.tenant = ""
        for name in users or ("alice",):
            self.add_user(name)

    def add_user(self, name: str) -> str:
        r = self.api.post(f"{DLS}/admin/users", json={"user": name})
        assert r.status_code == 201, r.text
        self.keys[name] = r.json()["dlsKey"]
        return self.keys[name]

    def headers(self, user: str, **extra: str) -> dict[str, str]:
        return {"x-dls-key": self.keys[user], **extra}

    def upload(self, user: str, data: bytes, filename: str | None = "f.csv",
               **params: Any) -> httpx.Response:
        if filename is not None:
            params.setdefault("filename", filename)
        return self.api.post(f"{DLS}/file", params=params, content=data,
                             headers=self.headers(user))

    def uri(self, user: str, path: str) -> str:
        if not self.tenant:
            r = self.api.get(f"{DLS}/catalog", headers=self.headers(user))
            assert r.status_code == 200, r.text
            self.tenant = self._tenant_name()
        return f"{self.tenant}/{user}/{path}"

    def _tenant_name(self) -> str:

        from pyconnector_server.auth import tenant_for_key

        t = tenant_for_key(self.api.app.state.db, self.api.api_key)
        assert t is not None
        return t.name

    def download(self, user: str, uri: str, **headers: str) -> httpx.Response:
        return self.api.get(f"{DLS}/file", params={"file-uri": uri},
                            headers=self.headers(user, **headers))

    def delete(self, user: str, *uris: str) -> httpx.Response:
        return self.api.delete(f"{DLS}/file", params=[("file-uri", u) for u in uris],
                               headers=self.headers(user))

    def search(self, user: str, **params: Any) -> httpx.Response:
        return self.api.get(f"{DLS}/catalog", params=params, headers=self.headers(user))

    def found(self, user: str, **params: Any) -> list[str]:
        r = self.search(user, **params)
        assert r.status_code == 200, r.text
        return sorted(f["filename"] for f in r.json()["result"])

    def call(self, method: str, user: str, path: str, **kw: Any) -> httpx.Response:
        headers = self.headers(user, **kw.pop("headers", {}))
        return self.api.client.request(method, f"{DLS}{path}",
                                       headers={**self.api.headers(), **headers}, **kw)

    def blobs(self) -> list[tuple[str, int]]:
        return list(self.api.app.state.dls.blobs.list())
