"""The catalogue of standard changes: pre-approved, low-risk, repeatable changes with a known
plan and backout. A standard RFC names one; it never goes to the committee. Pure."""

from __future__ import annotations

from dataclasses import dataclass

from cmdb.models import CIClass


@dataclass(frozen=True)
class StandardTemplate:
    key: str
    title: str
    description: str
    plan: str
    backout_plan: str
    ci_classes: frozenset[CIClass]


CATALOGUE: dict[str, StandardTemplate] = {
    template.key: template
    for template in (
        StandardTemplate(
            "server-imaging",
            "Standard server imaging",
            "Re-image a server or VM from the approved golden image.",
            "Drain the node, image it from the current golden image, apply the role playbook, run the smoke tests, "
            "return it to service.",
            "Re-attach the previous system disk snapshot and return the node to service.",
            frozenset({CIClass.SERVER, CIClass.VIRTUAL_MACHINE, CIClass.OPERATING_SYSTEM}),
        ),
        StandardTemplate(
            "workstation-patch",
            "Monthly workstation patching",
            "Apply the vendor's monthly cumulative update to desktops.",
            "Deploy the approved cumulative update through the management tool to the pilot ring, then all desktops.",
            "Uninstall the update through the management tool and reboot.",
            frozenset({CIClass.DESKTOP, CIClass.OPERATING_SYSTEM}),
        ),
        StandardTemplate(
            "certificate-renewal",
            "TLS certificate renewal",
            "Replace an expiring certificate with a renewed one from the same authority.",
            "Install the renewed certificate, reload the service, verify the chain and expiry from outside.",
            "Reinstall the previous certificate (still valid) and reload.",
            frozenset({CIClass.APPLICATION, CIClass.SERVICE, CIClass.NETWORK_DEVICE}),
        ),
        StandardTemplate(
            "backup-job-change",
            "Backup schedule adjustment",
            "Move a backup job's schedule within the agreed backup window.",
            "Change the job's schedule in the backup console; confirm the next run starts and completes.",
            "Restore the previous schedule.",
            frozenset({CIClass.DATABASE, CIClass.SERVER, CIClass.VIRTUAL_MACHINE, CIClass.STORAGE}),
        ),
    )
}
