/**
 * The demo corpus' subject matter: business frameworks, the kind of material the RAG store was
 * designed for. Each topic is one cluster of the embedding space; its words make full-text (hybrid)
 * searches find the same documents the vector search finds. Concept names satisfy
 * key_concepts' pattern ^[A-Za-z0-9 &-]+$, words are >= 3 letters so that
 * character_count >= 3 * word_count always holds.
 */
export interface Topic {
  /** framework_metadata.framework_name and the document titles. */
  name: string;
  /** source_file stem: ^[A-Za-z0-9_.-]+$ */
  slug: string;
  concepts: string[];
  words: string[];
}

export const TOPICS: Topic[] = [
  { name: 'Value Equation', slug: 'value-equation', concepts: ['Value Equation', 'Dream Outcome', 'Perceived Likelihood'], words: ['value', 'dream', 'outcome', 'likelihood', 'achievement', 'delay', 'effort', 'sacrifice', 'perceived', 'status'] },
  { name: 'Grand Slam Offer', slug: 'grand-slam-offer', concepts: ['Grand Slam Offer', 'Offer Stacking', 'Delivery Vehicle'], words: ['offer', 'bundle', 'stack', 'irresistible', 'problem', 'solution', 'delivery', 'vehicle', 'trim', 'enhance'] },
  { name: 'Premium Pricing', slug: 'premium-pricing', concepts: ['Premium Pricing', 'Price Anchoring', 'Virtuous Cycle of Price'], words: ['price', 'premium', 'margin', 'anchor', 'discount', 'commodity', 'tier', 'expensive', 'profit', 'market'] },
  { name: 'Guarantees', slug: 'guarantees', concepts: ['Guarantees', 'Risk Reversal', 'Conditional Guarantee'], words: ['guarantee', 'refund', 'risk', 'reversal', 'conditional', 'unconditional', 'promise', 'warranty', 'trust', 'penalty'] },
  { name: 'Scarcity & Urgency', slug: 'scarcity-urgency', concepts: ['Scarcity & Urgency', 'Cohort Launch', 'Deadline Bonus'], words: ['scarcity', 'urgency', 'deadline', 'limited', 'cohort', 'seasonal', 'waitlist', 'capacity', 'countdown', 'exploding'] },
  { name: 'Lead Magnets', slug: 'lead-magnets', concepts: ['Lead Magnets', 'Free Trial', 'Self-Diagnosis'], words: ['lead', 'magnet', 'free', 'trial', 'diagnosis', 'sample', 'audience', 'capture', 'checklist', 'calculator'] },
  { name: 'Core Four', slug: 'core-four', concepts: ['Core Four', 'Warm Outreach', 'Paid Ads'], words: ['outreach', 'content', 'cold', 'warm', 'paid', 'ads', 'posting', 'channel', 'volume', 'reach'] },
  { name: 'Lead Getters', slug: 'lead-getters', concepts: ['Lead Getters', 'Referrals', 'Affiliates & Agencies'], words: ['affiliate', 'agency', 'employee', 'customer', 'referral', 'partner', 'commission', 'introduction', 'network', 'incentive'] },
  { name: 'Offer Naming', slug: 'offer-naming', concepts: ['Offer Naming', 'MAGIC Formula', 'Headline Hooks'], words: ['name', 'magic', 'formula', 'headline', 'attention', 'reason', 'container', 'hook', 'aspiration', 'timeframe'] },
  { name: 'Retention', slug: 'retention', concepts: ['Retention', 'Customer Onboarding', 'Lifetime Value'], words: ['churn', 'retention', 'onboarding', 'community', 'lifetime', 'ascension', 'renewal', 'engagement', 'cancel', 'loyalty'] },
  { name: 'Sales Process', slug: 'sales-process', concepts: ['Sales Process', 'Objection Handling', 'Closing'], words: ['closing', 'objection', 'call', 'script', 'qualify', 'follow', 'pitch', 'prospect', 'decision', 'commitment'] },
  { name: 'Scaling Operations', slug: 'scaling-operations', concepts: ['Scaling Operations', 'Delegation', 'Constraints'], words: ['hire', 'scaling', 'team', 'process', 'delegation', 'leverage', 'constraint', 'bottleneck', 'system', 'manager'] },
];

/** Words every topic shares, so documents read like prose and rank by their topic words. */
export const COMMON_WORDS = [
  'the', 'business', 'customer', 'your', 'with', 'more', 'that', 'this', 'when', 'because', 'then',
  'result', 'make', 'people', 'first', 'every', 'what', 'they', 'will', 'growth', 'money', 'work',
];

export const CHUNK_TYPES = ['atomic_framework', 'framework_section', 'supporting'] as const;
