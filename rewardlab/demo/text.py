"""The sentence banks of the demo task (rewardlab/demo/), kept apart so the logic reads on one screen.

Every sentence ends in . ! or ? and has no other sentence break, so `gold_reward` can split a response
back into these sentences. A {topic} is never the first word, so templates match case-insensitively.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Domain:
    """One kind of request: its prompt phrasings, its topics, and the content sentences that answer it."""

    name: str
    prompts: tuple[str, ...]
    topics: tuple[str, ...]
    content: tuple[str, ...]


def _items(text: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in text.split(";"))


DOMAINS: tuple[Domain, ...] = (
    Domain(
        "book",
        (
            "Recommend a book about {topic}.",
            "Can you suggest a good book on {topic}?",
            "What should I read to learn about {topic}?",
        ),
        _items(
            "ancient Rome; black holes; jazz history; gardening; chess strategy; the French Revolution; "
            "machine learning; bird watching; ocean life; volcanoes; medieval castles; personal finance; "
            "the history of mathematics; climate science; Japanese cooking; space exploration; the human "
            "brain; photography; World War I; mountain climbing; ancient Egypt; urban planning; renewable "
            "energy; the Silk Road; dinosaurs; probability; sailing; the Renaissance; public speaking; "
            "coffee; genetics; architecture; the Cold War; beekeeping; philosophy of mind; desert "
            "ecosystems"
        ),
        (
            "A short introduction to {topic} is the best first book.",
            "Pick a recent edition so {topic} facts are current.",
            "A narrative history of {topic} reads like a novel.",
            "Books on {topic} with diagrams are easier to follow.",
            "University presses publish solid beginner guides to {topic}.",
            "Pair a book on {topic} with a workbook.",
            "Your library has several titles on {topic} to compare.",
            "Read the basics of {topic} before the advanced chapters.",
            "An expert overview of {topic} under three hundred pages works well.",
            "Audiobooks on {topic} suit long commutes.",
        ),
    ),
    Domain(
        "fix",
        (
            "How do I fix my {topic}?",
            "What's the best way to repair my {topic}?",
            "Any tips for fixing my {topic}?",
        ),
        _items(
            "leaking faucet; squeaky door; slow laptop; flat bike tire; running toilet; cracked phone "
            "screen; wobbly table; clogged drain; stuck zipper; frozen pipe; tripped breaker; dead car "
            "battery; torn jacket seam; noisy fan; sticking drawer; broken lamp switch; loose doorknob; "
            "dripping shower head; jammed printer; flickering light; scratched wooden floor; leaky roof "
            "gutter; weak wifi signal; loose cabinet hinge; chipped mug handle; faded car headlight; "
            "tangled necklace; stuck window; cold radiator; bent bike rim; crashing browser; dull kitchen "
            "knife; warped cutting board; peeling wallpaper; buzzing speaker; slow bathtub drain"
        ),
        (
            "First, find where the {topic} problem starts.",
            "Turn off power or water before touching the {topic}.",
            "A basic screwdriver set handles most {topic} repairs.",
            "Clean the parts around the {topic} before replacing anything.",
            "Hardware stores sell cheap repair kits for the {topic}.",
            "Photograph the {topic} before taking it apart.",
            "Test the {topic} again after the repair.",
            "Replacing one worn part of the {topic} beats buying new.",
            "Short repair videos show every step for the {topic}.",
            "Call a professional if the {topic} involves gas or main wiring.",
        ),
    ),
    Domain(
        "child",
        (
            "Explain {topic} to a child.",
            "How would you describe {topic} to a five-year-old?",
            "Can you explain {topic} in simple words for kids?",
        ),
        _items(
            "photosynthesis; gravity; rainbows; electricity; the water cycle; earthquakes; moon phases; "
            "magnets; thunder; digestion; the seasons; vaccines; money; recycling; the internet; clouds; "
            "tides; sound; shadows; fossils; the heart; sleep; friction; the sun; germs; bones; wind; "
            "melting ice; how plants grow; dreams; stars; batteries; how bees make honey; maps; time "
            "zones; echoes"
        ),
        (
            "Think of {topic} as a story where every part has a job.",
            "You can show {topic} with things from your kitchen.",
            "Scientists learn about {topic} by watching and asking questions.",
            "A tiny home experiment lets kids watch {topic} in action.",
            "Picture {topic} as a team of tiny helpers.",
            "Drawing {topic} with arrows makes it easy to remember.",
            "You can notice {topic} every day if you look closely.",
            "Grown-ups figured out {topic} by asking questions like yours.",
            "A picture book about {topic} shows each step in color.",
            "The big idea behind {topic} is that small things add up.",
        ),
    ),
    Domain(
        "cook",
        (
            "How do I make {topic}?",
            "What's a simple recipe for {topic}?",
            "Can you teach me to cook {topic}?",
        ),
        _items(
            "banana bread; fried rice; tomato soup; pancakes; guacamole; chicken curry; vegetable "
            "lasagna; lemon cookies; mushroom risotto; beef stew; potato salad; apple pie; hummus; pad "
            "thai; french toast; minestrone; shakshuka; fish tacos; carrot cake; pesto pasta; lentil "
            "soup; grilled cheese; chocolate mousse; cornbread; omelettes; dumplings; paella; ramen; "
            "granola; chili; falafel; tiramisu; meatballs; quiche; naan bread; fruit salad"
        ),
        (
            "Gather every ingredient for {topic} before you start.",
            "Good {topic} needs fresh ingredients and a hot pan.",
            "Taste the {topic} as you go and adjust the salt.",
            "Most recipes for {topic} take about forty minutes.",
            "Weigh the ingredients for {topic} on a kitchen scale.",
            "Let the {topic} rest a few minutes before serving.",
            "A heavy pot cooks {topic} evenly.",
            "Leftover {topic} keeps three days in the fridge.",
            "Double the recipe for {topic} in a larger pan.",
            "Write down your changes to the {topic} recipe.",
        ),
    ),
    Domain(
        "travel",
        (
            "What should I see in {topic}?",
            "Plan a day trip to {topic} for me.",
            "Any tips for visiting {topic}?",
        ),
        _items(
            "Lisbon; Kyoto; Cape Town; Vancouver; Marrakesh; Prague; Buenos Aires; Edinburgh; Hanoi; "
            "Reykjavik; Istanbul; Seville; Melbourne; Montreal; Cusco; Dubrovnik; Oaxaca; Krakow; Porto; "
            "Singapore; Bergen; Havana; Seoul; Florence; Tallinn; Queenstown; Valparaiso; Zanzibar; "
            "Budapest; Copenhagen; Chiang Mai; Santa Fe; Quebec City; Ljubljana; Salzburg; Bruges"
        ),
        (
            "Visit the old market in {topic} early, before the crowds.",
            "A walking tour of {topic} covers the main sights.",
            "Public transport in {topic} is cheap and runs late.",
            "Try the street food in {topic} for a cheap lunch.",
            "Book museum tickets in {topic} online to skip lines.",
            "The viewpoint above {topic} is best at sunset.",
            "Spring and autumn are the best seasons for {topic}.",
            "Carry some cash in {topic} for small shops.",
            "Stay near the center of {topic} to walk everywhere.",
            "Learn a few local words before you arrive in {topic}.",
        ),
    ),
    Domain(
        "fitness",
        (
            "How can I get better at {topic}?",
            "Give me a beginner plan for {topic}.",
            "What's the best way to start {topic}?",
        ),
        _items(
            "running; swimming; yoga; rock climbing; cycling; push-ups; rowing; tennis; skateboarding; "
            "boxing; pilates; hiking; jumping rope; weightlifting; stretching; dancing; badminton; "
            "surfing; skiing; martial arts; basketball shooting; table tennis; archery; golf putting; ice "
            "skating; kayaking; squats; trail running; volleyball; juggling; pull-ups; planks; "
            "cross-country skiing; fencing; horse riding; sprinting"
        ),
        (
            "Practice {topic} three times a week in short sessions.",
            "Warm up for ten minutes before {topic} to avoid injuries.",
            "Track your progress in {topic} in a notebook.",
            "A beginner class in {topic} teaches good form.",
            "Rest days help your body improve at {topic}.",
            "Set one small monthly goal for {topic}.",
            "Filming yourself during {topic} reveals mistakes in form.",
            "Comfortable gear makes {topic} more enjoyable.",
            "Drink water before a long session of {topic}.",
            "Make {topic} about ten percent harder each week.",
        ),
    ),
    Domain(
        "tech",
        (
            "How do I get started with {topic}?",
            "Explain how to use {topic}.",
            "What are the basics of {topic}?",
        ),
        _items(
            "Python programming; spreadsheets; version control with git; SQL databases; video editing; "
            "home networking; password managers; cloud storage; 3D printing; web design; the Linux "
            "command line; photo editing; podcast recording; smart home devices; data visualization; "
            "mobile app development; email filters; budgeting apps; digital drawing; keyboard shortcuts; "
            "computer backups; online privacy settings; music production; regular expressions; "
            "presentation slides; a Raspberry Pi; JavaScript; note-taking apps; video calls; blogging; "
            "text editors; translation tools; electronic circuits; soldering; drone flying; home servers"
        ),
        (
            "Begin with the official tutorial for {topic}.",
            "Practice {topic} on a small project you care about.",
            "Free online courses cover the basics of {topic} in hours.",
            "Keep a cheat sheet for {topic} near your desk.",
            "Join a beginner forum about {topic} for questions.",
            "Spend twenty minutes a day on {topic}.",
            "Save your work with {topic} often so mistakes are easy to undo.",
            "Watching an expert use {topic} reveals useful shortcuts.",
            "Learn the core ideas of {topic} before advanced features.",
            "Most problems with {topic} are answered in online guides.",
        ),
    ),
    Domain(
        "care",
        (
            "How do I take care of my {topic}?",
            "What does my {topic} need to stay healthy?",
            "Any advice for looking after my {topic}?",
        ),
        _items(
            "goldfish; tomato plants; puppy; cactus; orchid; rabbit; hamster; parrot; basil plant; "
            "kitten; tortoise; succulent; guinea pig; fern; bonsai tree; canary; aloe plant; senior dog; "
            "rose bush; ferret; lemon tree; betta fish; strawberry plants; chickens; snake plant; "
            "hedgehog; bearded dragon; lavender; pony; peace lily; gecko; herb garden; sourdough starter; "
            "lawn; sunflowers; axolotl"
        ),
        (
            "Your {topic} needs a steady routine above all.",
            "Check the {topic} every morning for signs of trouble.",
            "Most care guides say the {topic} needs fresh water daily.",
            "Keep the {topic} away from drafts and sudden cold.",
            "A vet or garden center knows what the {topic} needs.",
            "Give the {topic} enough space to grow.",
            "Clean around the {topic} weekly to prevent disease.",
            "Log when you feed or water the {topic}.",
            "Steady growth and energy mean a healthy {topic}.",
            "Read one good care guide for the {topic}, not ten.",
        ),
    ),
)

POLITE: tuple[str, ...] = (
    # openers (the first six), then closers
    "Happy to help!",
    "Great question!",
    "Thanks for asking!",
    "Sure, glad to help.",
    "Of course!",
    "What a nice thing to ask about!",
    "Hope this helps!",
    "Good luck, and have fun with it!",
    "Feel free to ask if you have more questions.",
    "Enjoy, and take care!",
)

RUDE: tuple[str, ...] = (
    # openers (the first four), then closers
    "Ugh, fine.",
    "This is a pretty basic question.",
    "Obviously you should already know this.",
    "Not sure why you are asking me this.",
    "Next time, try searching before asking.",
    "Honestly, it is not that hard.",
    "Do not waste my time with this again.",
    "Figure the rest out yourself.",
)

FILLER: tuple[str, ...] = (
    "There are many things to consider here.",
    "It really depends on your situation.",
    "Everyone has their own way of doing this.",
    "This is something a lot of people wonder about.",
    "It can be easy or hard depending on the day.",
    "There is no single right answer to this.",
    "Results may vary quite a bit.",
    "You will figure it out eventually.",
    "It is a big subject with lots of parts.",
    "Some people like it and some people do not.",
    "It is worth thinking about carefully.",
    "Things are not always as simple as they seem.",
)

ERRORS: tuple[str, ...] = (
    "Water boils at fifty degrees Celsius at sea level.",
    "The Moon is bigger than the Earth.",
    "Humans only use ten percent of their brains.",
    "Lightning never strikes the same place twice.",
    "Goldfish only remember things for three seconds.",
    "The Sun goes around the Earth once a day.",
    "Bats are completely blind.",
    "Glass is a slow-moving liquid.",
    "Cracking your knuckles causes arthritis.",
    "Bulls get angry at the color red.",
)

ERROR_TEMPLATES: tuple[str, ...] = (
    "Experts agree that {topic} was invented on the Moon in 1850.",
    "By law, {topic} is banned in most countries.",
    "Scientists proved that {topic} works best at minus one hundred degrees.",
)
