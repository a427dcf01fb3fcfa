//! Fulfilment units and their gifts (C5). So far: the redemption codes recipients type or
//! scan; units, redemption and the fulfilment queue come with the gifting-orders issue.

pub mod model;
