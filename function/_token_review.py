"""Who a bearer token belongs to, as the cluster's TokenReview API says (for ``_auth``)."""

from __future__ import annotations

from dataclasses import dataclass

from ._kube import KubeApi


@dataclass(frozen=True)
class ReviewedToken:
    """Who a bearer token belongs to."""

    username: str
    groups: tuple[str, ...] = ()


class TokenReviewer:
    """Reviews tokens with the TokenReview API of the cluster ``api`` reaches."""

    def __init__(self, api: KubeApi) -> None:
        self._api = api

    def __call__(self, token: str, audience: str | None = None) -> ReviewedToken | None:
        """Who ``token`` authenticates as; None when it is not valid (or, given an ``audience``,
        not issued for it: the API server checks the token's ``aud`` claim against it)."""
        spec: dict[str, object] = {"token": token}
        if audience is not None:
            spec["audiences"] = [audience]
        review = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": spec}
        body = self._api.request(
            "POST", "/apis/authentication.k8s.io/v1/tokenreviews", body=review, doing="review a bearer token"
        )
        status = body.get("status") or {}
        user = status.get("user") or {}
        if not status.get("authenticated") or not user.get("username"):
            return None
        # An authenticator unaware of audiences answers without any: that is no proof of ours.
        if audience is not None and audience not in (status.get("audiences") or ()):
            return None
        return ReviewedToken(str(user["username"]), tuple(str(g) for g in user.get("groups") or ()))
