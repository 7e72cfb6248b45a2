"""The made-up values the sandbox's generated fleet is drawn from.

Names, org units, places, notes, device models with their serial styles, Chrome OS releases,
Android versions, carriers and apps; `bot.sandbox.generate` draws devices from them.
"""

from __future__ import annotations

from datetime import UTC, datetime


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


FIRST = _words(
    "alice bob carol dave erin frank grace heidi ivan judy mallory niaj olivia peggy rupert "
    "sybil trent victor walter xena yusuf zoe amir bianca chen dmitri elena farah gustavo "
    "hana ines jonas kemal leila marco noor oskar priya quentin rosa sanjay tomas uma "
    "valentin wen ximena yara zeynep aaron beatriz claude dalia emeka fatima goran helga "
    "ingrid jamal keiko lars mei nikolai omar paula ravi sofia tariq ursula vera wilhelm"
)
LAST = _words(
    "smith jones taylor brown williams wilson johnson davies robinson wright thompson evans "
    "walker white roberts green hall wood jackson clarke patel khan lewis james phillips "
    "mason mitchell rose davis rodriguez cox alexander garcia martin moreau dubois bernard "
    "muller schmidt schneider fischer weber rossi russo ferrari esposito tanaka suzuki sato "
    "kim lee park nguyen tran silva santos oliveira costa novak kowalski nowak horvat "
    "andersen nielsen hansen larsen berg lindqvist virtanen korhonen murphy kelly byrne"
)
DOMAIN = "example.com"

#: the organisational unit whose devices run a kiosk app (and carry Kiosk Upgrade licences)
KIOSK_OU = "/Kiosks"
ORG_UNITS = (
    "/",
    "/Sales",
    "/Sales/EMEA",
    "/Sales/AMER",
    "/Sales/APAC",
    "/Engineering",
    "/Engineering/Labs",
    "/Support",
    "/Finance",
    "/HR",
    "/Education",
    "/Education/Classroom Carts",
    KIOSK_OU,
    "/Loaners",
    "/Retired",
)
OU_WEIGHTS = (2, 4, 10, 10, 6, 12, 3, 8, 4, 3, 2, 6, 3, 3, 2)

LOCATIONS = (
    "London HQ, Floor 3",
    "London HQ, Floor 5",
    "Paris Office",
    "Berlin - Room 2.14",
    "Dublin",
    "New York 5th Ave",
    "Austin Lab",
    "Toronto",
    "Tokyo",
    "Singapore Hub",
    "Sydney",
    "Warehouse B",
    "Help desk shelf",
)
NOTES = (
    "Loaner pool",
    "Screen cracked - repair ticket INC-4411",
    "Battery swollen, do not issue",
    "Spare",
    "Shared cart device",
    "Reception kiosk",
    "Reported lost 2024-03",
    "Keyboard replaced",
    "Exec travel device",
)

# (model, serial style, board, firmware prefix)
CHROME_MODELS = (
    ("HP Chromebook 14 G7", "hp", "dedede", "Google_Dedede.13606"),
    ("HP Elite c640 14 inch G3 Chromebook", "hp", "brya", "Google_Brya.14505"),
    ("HP Chromebook x360 11 G4 EE", "hp", "dedede", "Google_Dedede.13606"),
    ("Acer Chromebook Spin 514", "acer", "zork", "Google_Zork.13434"),
    ("Acer Chromebook 314", "acer", "nissa", "Google_Nissa.15217"),
    ("Acer Chromebook Plus 515", "acer", "brya", "Google_Brya.14505"),
    ("Lenovo 300e Chromebook Gen 3", "lenovo", "grunt", "Google_Grunt.11031"),
    ("Lenovo ThinkPad C14 Gen 1 Chromebook", "lenovo", "brya", "Google_Brya.14505"),
    ("Lenovo 100e Chromebook Gen 4", "lenovo", "nissa", "Google_Nissa.15217"),
    ("Dell Chromebook 3110", "dell", "dedede", "Google_Dedede.13606"),
    ("Dell Latitude 5430 Chromebook", "dell", "brya", "Google_Brya.14505"),
    ("ASUS Chromebook Flip CX5", "asus", "volteer", "Google_Volteer.13672"),
    ("ASUS Chromebook CX1", "asus", "octopus", "Google_Octopus.11297"),
    ("Google Pixelbook Go", "google", "hatch", "Google_Hatch.12672"),
    ("Samsung Galaxy Chromebook 2", "samsung", "hatch", "Google_Hatch.12672"),
)
#: board → the month its Chrome OS updates end (auto-update expiry is per model in Google's
#: policy; these dates are made up, spread over past and future months for the fleet chart)
AUTO_UPDATE_THROUGH = {
    "grunt": "2026-06-01",
    "octopus": "2027-11-01",
    "hatch": "2029-06-01",
    "zork": "2030-06-01",
    "volteer": "2031-08-01",
    "dedede": "2031-06-01",
    "brya": "2032-06-01",
    "nissa": "2033-06-01",
}
AUE_MS = {
    board: str(int(datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=UTC).timestamp()) * 1000)
    for board, day in AUTO_UPDATE_THROUGH.items()
}


# milestone → (Chrome build, platform major)
CHROME_RELEASES = {
    120: (6099, 15662),
    121: (6167, 15699),
    122: (6261, 15753),
    123: (6312, 15786),
    124: (6367, 15823),
    125: (6422, 15853),
    126: (6478, 15886),
    127: (6533, 15917),
    128: (6613, 15964),
    129: (6668, 16002),
    130: (6723, 16033),
    131: (6778, 16063),
}
MILESTONES = tuple(CHROME_RELEASES)
MILESTONE_WEIGHTS = (1, 1, 1, 2, 2, 3, 4, 6, 10, 16, 25, 30)

CHROME_STATUSES = (
    "ACTIVE",
    "DISABLED",
    "DEPROVISIONED",
    "PROVISIONED",
    "INACTIVE",
    "RETURN_REQUESTED",
    "RETURN_ARRIVED",
    "SHIPPED",
    "PRE_PROVISIONED_DISABLED",
    "UNKNOWN",
)
CHROME_STATUS_WEIGHTS = (850, 40, 60, 20, 15, 3, 3, 4, 3, 2)
#: a Chrome device in these statuses holds a licence: the reference says re-enabling a
#: disabled device consumes one, so disabling (and deprovisioning) gives it back
LICENSED_STATUSES = frozenset({"ACTIVE"})

DEPROVISION_REASONS = (
    "DEPROVISION_REASON_SAME_MODEL_REPLACEMENT",
    "DEPROVISION_REASON_DIFFERENT_MODEL_REPLACEMENT",
    "DEPROVISION_REASON_RETIRING_DEVICE",
    "DEPROVISION_REASON_UPGRADE_TRANSFER",
)

# (brand, manufacturer, model, hardware, serial style, api levels, has telephony)
ANDROID_MODELS = (
    ("samsung", "samsung", "SM-G991B", "qcom", "samsung", (31, 33, 34), True),
    ("samsung", "samsung", "SM-S921B", "s5e9945", "samsung", (34, 35), True),
    ("samsung", "samsung", "SM-A145R", "mt6769", "samsung", (33, 34), True),
    ("samsung", "samsung", "SM-T575", "exynos9810", "samsung", (29, 30, 31), False),
    ("google", "Google", "Pixel 6a", "bluejay", "pixel", (33, 34, 35), True),
    ("google", "Google", "Pixel 8", "shiba", "pixel", (34, 35, 36), True),
    ("google", "Google", "Pixel 9", "tokay", "pixel", (35, 36), True),
    ("Zebra", "Zebra Technologies", "TC52", "sdm660", "zebra", (27, 29, 30), False),
    ("Zebra", "Zebra Technologies", "TC58", "qcom", "zebra", (33, 34), True),
    ("Honeywell", "Honeywell", "CT40", "msm8937", "honeywell", (26, 28), False),
    ("motorola", "motorola", "moto g power (2022)", "mt6765", "moto", (30, 31), True),
    ("Nokia", "HMD Global", "Nokia G21", "ums512", "nokia", (28, 30), True),
)
ANDROID_VERSIONS = {
    24: "7.0",
    25: "7.1.1",
    26: "8.0.0",
    27: "8.1.0",
    28: "9",
    29: "10",
    30: "11",
    31: "12",
    32: "12L",
    33: "13",
    34: "14",
    35: "15",
    36: "16",
}
CARRIERS = ("Vodafone", "EE", "O2", "T-Mobile", "Verizon", "AT&T", "Orange", "Telekom")
PACKAGES = (
    "com.google.android.gm",
    "com.android.chrome",
    "com.google.android.apps.docs",
    "com.Slack",
    "com.microsoft.teams",
    "com.microsoft.office.outlook",
    "com.google.android.calendar",
    "com.zebra.mdna.els",
    "com.salesforce.chatter",
    "com.example.fieldapp",
)
PROTECTED_PACKAGES = frozenset(
    {"com.android.vending", "com.google.android.gms", "com.google.android.apps.work.clouddpc"}
)
