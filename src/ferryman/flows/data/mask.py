"""Masked copies: another environment's data made fit for STAGING. The rules of each dump
(data.dumps[].mask, SQL) run on the database just loaded on TO, while its business
containers are still stopped; a rule that fails fails the apply, whose undos load TO's
safety backup back. The copy kept on TO is then dumped again from the masked database, so
no unmasked archive stays there, and its manifest names the rules that ran."""

from __future__ import annotations

from ...config import Config
from ...data import archive as ar
from ...errors import BadInput
from ...state import write_file
from ...steps import Step
from ...transport import CommandFailed
from .plan import DataState, lines
from .site import Site


def rules_for(cfg: Config, dst_env: str, mask: bool) -> dict[str, list[str]]:
    """dump name -> its rules, when this copy is masked ({} when it is not); bad input
    (nothing to mask, a dump without rules) is refused before anything runs."""
    policy = cfg.environments[dst_env].policy
    if policy.masked and not mask:
        raise BadInput(f"{dst_env} takes masked data only (environments.{dst_env}.policy."
                       "masked): add --mask", hint="the rules are data.dumps[].mask")
    if not mask:
        return {}
    dumps = cfg.data.dumps if cfg.data else []
    if not dumps:
        raise BadInput("--mask: data.dumps is empty: there is no database to mask")
    bare = [f"data.dumps[{i}] ({d.name})" for i, d in enumerate(dumps) if not d.mask]
    if bare:
        raise BadInput(f"--mask: {', '.join(bare)} has no mask rules: its data would reach "
                       f"{dst_env} unmasked", hint="add mask: [SQL, ...] to each dump")
    return {d.name: list(d.mask) for d in dumps}


def refuse_unmasked(cfg: Config, env: str, m: ar.Manifest) -> None:
    """restore: an environment that takes masked data only gets another environment's
    backup only if every dump of it was masked."""
    if not cfg.environments[env].policy.masked or m.env == env:
        return
    dumps = [i.name for i in m.items if i.kind == "dump"]
    if not dumps or any(n not in m.masked for n in dumps):
        raise BadInput(f"backup {m.id} is {m.env}'s data, not masked, and {env} takes masked "
                       f"data only (environments.{env}.policy.masked)",
                       hint=f"ferryman sync-data {m.env} {env} --mask")


def mask_steps(s: Site, m: ar.Manifest, rules: dict[str, list[str]],
               state: DataState) -> list[Step]:
    """m: the copy as planned; its counts are state.applied's when the steps run."""
    dumps = [i for i in m.items if i.kind == "dump" and i.name in rules]

    async def run_rules() -> str:
        for item in dumps:
            res = await s.host.run(ar.mask_command(item), input=ar.mask_sql(item, rules[item.name]),
                                   timeout=None)
            if not res.ok:
                raise CommandFailed(res, f"a mask rule of {item.label} failed on {s.label}")
        return f"{sum(len(rules[i.name]) for i in dumps)} rule(s) ran on " + \
            ", ".join(i.label for i in dumps)

    def redump_argvs() -> list[list[str]]:
        return [ar.dump(i, f"{s.folder(m.id)}/{i.archive}", m.compression) for i in dumps]

    async def keep_masked() -> str:
        applied = state.applied
        assert applied is not None
        for item, argv in zip(dumps, redump_argvs(), strict=True):
            res = await s.host.run(argv, timeout=None)
            if not res.ok:
                raise CommandFailed(res, f"dumping the masked {item.label} failed")
            kept = next(i for i in applied.items if i.name == item.name)
            kept.files, kept.bytes, kept.sha256, kept.archive_bytes = ar.parse_pack(res.stdout)
        applied.masked = {i.name: rules[i.name] for i in dumps}
        await s.host.run(write_file(f"{s.folder(m.id)}/{ar.MANIFEST}"),
                         input=applied.to_json().encode(), timeout=30, check=True)
        return f"the copy {m.id} on {s.label} now holds the masked dumps only"

    mask = Step(f"mask {', '.join(i.name for i in dumps)} on {s.label}", run_rules,
                host=s.label, params={"rules": {i.name: rules[i.name] for i in dumps}},
                commands=lines([ar.mask_command(i) for i in dumps]))
    keep = Step(f"keep the masked copy {m.id} on {s.label}", keep_masked, host=s.label,
                commands=lines(redump_argvs()))
    return [mask, keep]
